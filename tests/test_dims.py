"""Tests for netc.compiler.dims: canonical symbolic dimensions."""

from __future__ import annotations

import itertools
import operator
import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from netc.compiler.dims import (
    DimError,
    Expr,
    exact_div,
    floordiv,
    fmt,
    is_dim,
    product,
    subs,
    sym,
    symbols,
)

N, T, H = sym("N"), sym("T"), sym("H")
SYMS = ("N", "T", "H")

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIGHT = settings(PROPS, max_examples=150)  # for small search spaces and secondary checks


def conv_out(size, kernel, stride=1, padding=0, dilation=1):
    """The usual convolution / pooling output-size formula, written once for int and Expr."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


# ---------------------------------------------------------------------------------------
# canonical form: examples
# ---------------------------------------------------------------------------------------


class TestCanonicalForm:
    def test_sym(self):
        assert isinstance(T, Expr)
        assert str(T) == "T"
        assert T == sym("T")
        assert T != H

    def test_add_sub_cancel(self):
        assert (T + 2 - 3) + 1 == sym("T")
        assert str((T + 2 - 3) + 1) == "T"
        assert T + 0 == T
        assert 0 + T == T

    def test_constants_collapse_to_int(self):
        d = T - T
        assert d == 0 and type(d) is int
        d = (T + 5) - T
        assert d == 5 and type(d) is int
        assert type(T * 0) is int and T * 0 == 0
        assert type(0 * T) is int
        assert (H * T) - (T * H) == 0

    def test_expr_never_equals_int(self):
        assert T != 0
        assert T + 1 != 1
        assert Expr.of(7) != 7  # raw, uncanonicalised constant: only _norm collapses it

    def test_commutative_and_distributive(self):
        assert H + T == T + H
        assert H * T == T * H
        assert (H + 1) * (T + 2) == H * T + 2 * H + T + 2
        assert (H + T) * (H - T) == H * H - T * T
        assert str((H + 1) * (H + 1)) == "2*H + H*H + 1"  # monomials in lexicographic order

    def test_term_order_is_deterministic(self):
        a = N * 3 + H * T - 7 + T
        b = T - 7 + T * H + 3 * N
        assert a == b
        assert str(a) == str(b)
        assert str(a) == "H*T + 3*N + T - 7"  # constant term last

    def test_conv_stride_2(self):
        out = conv_out(sym("H"), kernel=3, stride=2, padding=1)
        assert str(out) == "(H + 1) // 2"
        assert out == (H + 1) // 2
        assert (sym("H") + 2 * 1 - 1 * (3 - 1) - 1) // 2 + 1 == out

    def test_conv_same_padding_is_identity(self):
        assert conv_out(H, kernel=3, stride=1, padding=1) == H
        assert conv_out(H, kernel=5, stride=1, padding=2) == H
        assert conv_out(H, kernel=3, stride=1, padding=0) == H - 2

    def test_conv_matches_ints(self):
        for h, k, s, p in itertools.product(range(1, 40), (1, 3, 5, 7), (1, 2, 3, 4), (0, 1, 2, 3)):
            if h + 2 * p < k:
                continue
            assert subs(conv_out(H, k, s, p), {"H": h}) == conv_out(h, k, s, p)

    def test_nested_floordiv_merges(self):
        assert ((H + 1) // 2 + 1) // 2 == (H + 3) // 4
        assert str(((H + 1) // 2 + 1) // 2) == "(H + 3) // 4"
        assert (H // 2) // 2 == H // 4
        assert (H // 2) // 3 == H // 6
        assert ((H // 2) + 5) // 3 == (H + 10) // 6

    def test_resnet_stem(self):
        # conv 7x7 stride 2 pad 3, then maxpool 3x3 stride 2 pad 1
        h = conv_out(conv_out(H, 7, 2, 3), 3, 2, 1)
        assert h == (H + 3) // 4
        assert subs(h, {"H": 224}) == 56
        assert conv_out(conv_out(224, 7, 2, 3), 3, 2, 1) == 56

    def test_floordiv_splits_exact_part(self):
        assert (2 * H) // 2 == H
        assert (2 * H + 1) // 2 == H
        assert (2 * H + 3) // 2 == H + 1
        assert (4 * H + 2 * T + 1) // 2 == 2 * H + T
        assert (H + 3) // 2 == (H + 1) // 2 + 1
        assert (H - 1) // 2 == (H + 1) // 2 - 1
        assert str((3 * H + 5) // 2) == "H + (H + 1) // 2 + 2"

    def test_floordiv_common_factor(self):
        # the gcd of the divisor and the non-constant coefficients is divided out
        assert (2 * H + 2) // 4 == (H + 1) // 2
        assert (2 * H) // 4 == H // 2
        assert (2 * H + 3) // 4 == (H + 1) // 2
        assert (6 * H + 3 * T + 2) // 9 == (2 * H + T) // 3
        assert (2 * (H // 2)) // 4 == H // 4

    def test_floordiv_by_one_and_negative(self):
        assert H // 1 == H
        assert H // -1 == -H
        assert H // -2 == -H + H // 2
        assert -H // 2 == -H + H // 2
        with pytest.raises(DimError):
            H // 0
        with pytest.raises(DimError):
            floordiv(5, 0)

    def test_floordiv_by_symbol(self):
        assert H // H == 1
        assert (H * T) // H == T
        assert (H * T + 2 * H) // H == T + 2
        assert (6 * H * T) // (3 * H) == 2 * T
        assert 0 // H == 0
        with pytest.raises(DimError):
            (H + 1) // H
        with pytest.raises(DimError):
            H // T
        with pytest.raises(DimError):
            8 // H
        with pytest.raises(DimError):
            (3 * H) // (2 * H)

    def test_mod_identities(self):
        assert H % 1 == 0
        assert (2 * H) % 2 == 0
        assert (2 * H + 1) % 2 == 1
        assert (6 * H + 7) % 3 == 1
        assert (H + 4) % 2 == H % 2
        assert H % 2 == H - 2 * (H // 2)
        assert str(H % 2) == "H - 2*(H // 2)"
        assert (H // 3) * 3 + H % 3 == H
        assert (H * T) % H == 0
        assert (H * T) % T == 0
        assert 7 % 3 == 1
        assert (H % 4) % 2 == H % 2
        for h in range(-20, 40):
            assert subs(H % 5, {"H": h}) == h % 5
            assert subs((H + 3) % 4, {"H": h}) == (h + 3) % 4
            assert subs(H % -3, {"H": h}) == h % -3

    def test_mod_by_symbol(self):
        assert (3 * H) % H == 0
        assert 0 % H == 0
        with pytest.raises(DimError):
            (H + 1) % H
        with pytest.raises(DimError):
            5 % H


class TestExactDiv:
    def test_ints(self):
        assert exact_div(512, 8) == 64
        assert exact_div(-12, 4) == -3
        assert exact_div(0, 8) == 0
        with pytest.raises(DimError):
            exact_div(500, 8)
        with pytest.raises(DimError):
            exact_div(5, 0)

    def test_symbolic_by_int(self):
        assert exact_div(2 * H, 2) == H
        assert exact_div(4 * H + 8, 4) == H + 2
        assert exact_div(2 * (H // 3), 2) == H // 3
        assert exact_div(-2 * H, -2) == H
        with pytest.raises(DimError):
            exact_div(H, 2)
        with pytest.raises(DimError):
            exact_div(2 * H + 1, 2)
        with pytest.raises(DimError):
            exact_div(H, 0)

    def test_symbolic_by_symbolic(self):
        assert exact_div(H, H) == 1
        assert exact_div(H + 1, H + 1) == 1
        assert exact_div(H * T, H) == T
        assert exact_div(N * H * T, H * T) == N
        assert exact_div(6 * H * T + 3 * H, 3 * H) == 2 * T + 1
        assert exact_div(0, H) == 0
        with pytest.raises(DimError):
            exact_div(H, T)
        with pytest.raises(DimError):
            exact_div(H + 1, H)
        with pytest.raises(DimError):
            exact_div(512, H)
        with pytest.raises(DimError):
            exact_div(H * T, 2 * H)

    def test_error_is_value_error(self):
        assert issubclass(DimError, ValueError)


class TestPrinting:
    def test_examples(self):
        assert str(3 - H // 2) == "-(H // 2) + 3"
        assert str(-(H // 2)) == "-(H // 2)"
        assert str(-((H + 1) // 2)) == "-((H + 1) // 2)"
        assert str(2 * (H // 2)) == "2*(H // 2)"
        assert str((H // 2) * T) == "T*(H // 2)"
        assert str((H // 2) * (H // 2)) == "(H // 2)*(H // 2)"
        assert str((3 * H) // 4) == "3*H // 4"
        assert str(H - T) == "H - T"
        assert str(-H - T) == "-H - T"
        assert str(-2 * H + 1) == "-2*H + 1"
        assert str(H * H * T) == "H*H*T"
        assert repr(H + 1) == "H + 1"
        assert fmt(H + 1) == "H + 1"
        assert fmt(5) == "5"

    @pytest.mark.parametrize(
        "d",
        [
            3 - H // 2,
            -(H // 2) * T,
            (H + 1) // 2 * ((T + 2) // 3),
            -((2 * H + 1) // 3) - 1,
            ((H // 2) * (T // 3) + 1) // 5,
            (H * (T // 2) + N) // 3,
            -H % 3,
            2 - (N - H * T) // 7 * 3,
        ],
        ids=str,
    )
    def test_python_reads_it_back(self, d):
        for vals in itertools.product(range(-3, 6), repeat=3):
            env = dict(zip(SYMS, vals))
            assert eval(str(d), {}, env) == subs(d, env)


class TestHelpers:
    def test_subs(self):
        assert subs(H + 1, {"H": 4}) == 5
        assert type(subs(H + 1, {"H": 4})) is int
        assert subs((H + 1) // 2, {"H": 7}) == 4
        assert subs(H * T, {"H": 3}) == 3 * T
        assert subs(H * T, {}) == H * T
        assert subs(H, {"H": 2 * T + 1}) == 2 * T + 1
        assert subs((H + 1) // 2, {"H": 2 * T + 1}) == T + 1
        assert subs((H + 1) // 2, {"H": 2 * T}) == T
        assert subs((H + T) // 2, {"H": T}) == T
        assert subs(5, {"H": 3}) == 5
        assert subs(H // 2, {"T": 1}) == H // 2

    def test_symbols(self):
        assert symbols(5) == set()
        assert symbols(H) == {"H"}
        assert symbols(H * T + 1) == {"H", "T"}
        assert symbols((N + 1) // 2 + H) == {"N", "H"}
        assert symbols(((N * T) // 3) * 2) == {"N", "T"}

    def test_is_dim(self):
        assert is_dim(3) and is_dim(0) and is_dim(-1) and is_dim(H) and is_dim(H // 2)
        assert not is_dim(True) and not is_dim(2.0) and not is_dim("H") and not is_dim(None)

    def test_of(self):
        assert Expr.of(H) is H
        with pytest.raises(TypeError):
            Expr.of(True)
        with pytest.raises(TypeError):
            Expr.of(2.5)

    def test_non_dims_rejected(self):
        for bad in (2.0, "2", True, None):
            with pytest.raises(TypeError):
                H + bad
            with pytest.raises(TypeError):
                bad + H
            with pytest.raises(TypeError):
                H - bad
            with pytest.raises(TypeError):
                H * bad

    def test_product(self):
        assert product([]) == 1
        assert product([2, 3, 4]) == 24
        assert product([N, 3, H, T]) == 3 * N * H * T
        assert product([H, 0]) == 0

    def test_const(self):
        assert (H + 4).const() == 4
        assert H.const() == 0
        assert ((H + 3) // 2).const() == 1  # (H + 3) // 2 == (H + 1) // 2 + 1

    def test_hash_and_eq(self):
        a = (H + 1) * T // 2
        b = (T * H + T) // 2
        assert a == b and hash(a) == hash(b)
        assert len({a, b, H, sym("H"), 3, 3 + H - H}) == 3
        d = {a: "x"}
        assert d[b] == "x"
        assert sorted([T, H, N + 1], key=str) == sorted([N + 1, H, T])


# ---------------------------------------------------------------------------------------
# property tests: random expression trees
# ---------------------------------------------------------------------------------------
#
# A tree is an int, a symbol name, or (op, left, right); for "//" and "%" the right operand
# is an int constant.

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod}

small_ints = st.integers(-5, 9)
leaves = st.one_of(small_ints, st.sampled_from(SYMS))


POSITIVE_DIVISORS = st.integers(1, 6)


def trees(divisors=POSITIVE_DIVISORS, ring_only=False, max_leaves=10):
    def extend(children):
        ring = st.tuples(st.sampled_from(["+", "-", "*"]), children, children)
        if ring_only:
            return ring
        return st.one_of(ring, st.tuples(st.sampled_from(["//", "%"]), children, divisors))

    return st.recursive(leaves, extend, max_leaves=max_leaves)


def evaluate(tree, env):
    """The tree with Python ints."""
    if isinstance(tree, int):
        return tree
    if isinstance(tree, str):
        return env[tree]
    op, a, b = tree
    return OPS[op](evaluate(a, env), evaluate(b, env))


def build(tree):
    """The tree as a canonical dimension."""
    if isinstance(tree, int):
        return tree
    if isinstance(tree, str):
        return sym(tree)
    op, a, b = tree
    return OPS[op](build(a), build(b))


def tree_symbols(tree):
    if isinstance(tree, int):
        return set()
    if isinstance(tree, str):
        return {tree}
    return tree_symbols(tree[1]) | tree_symbols(tree[2])


def degree(tree):
    """An upper bound on the degree of a + - * tree in any one symbol."""
    if isinstance(tree, int):
        return 0
    if isinstance(tree, str):
        return 1
    op, a, b = tree
    return degree(a) + degree(b) if op == "*" else max(degree(a), degree(b))


envs = st.fixed_dictionaries({s: st.integers(0, 60) for s in SYMS})
int_envs = st.fixed_dictionaries({s: st.integers(-60, 60) for s in SYMS})


def check_agrees(tree, env):
    d = build(tree)
    assert is_dim(d)
    got = subs(d, env)
    assert type(got) is int, f"{d} with {env} did not collapse to an int: {got!r}"
    assert got == evaluate(tree, env), f"tree {tree}: canonical {d}"


@PROPS
@given(trees(), st.lists(envs, min_size=1, max_size=5))
def test_canonical_evaluates_like_python(tree, env_list):
    for env in env_list:
        check_agrees(tree, env)


@PROPS
@given(trees(divisors=st.integers(-6, 6).filter(bool)), st.lists(int_envs, min_size=1, max_size=5))
def test_canonical_evaluates_like_python_any_sign(tree, env_list):
    # every rewrite dims.py does is an identity over all integers, negative ones included
    for env in env_list:
        check_agrees(tree, env)


@PROPS
@given(trees(), envs)
def test_printing_is_python(tree, env):
    d = build(tree)
    assert eval(fmt(d), {}, dict(env)) == subs(d, env)


@LIGHT
@given(trees())
def test_structure(tree):
    d = build(tree)
    # a dimension without symbols is a plain int; an Expr always has symbols
    assert isinstance(d, int) == (not symbols(d))
    assert symbols(d) <= tree_symbols(tree)
    # canonical form is a fixed point of re-canonicalisation
    assert subs(d, {}) == d
    assert subs(d, {s: sym(s) for s in SYMS}) == d
    if isinstance(d, Expr):
        assert hash(subs(d, {})) == hash(d)


@PROPS
@given(trees(), trees(max_leaves=4), st.integers(1, 7))
def test_algebraic_identities(tree, other_tree, k):
    d, e = build(tree), build(other_tree)
    assert operator.neg(-d) == d
    assert d + 0 == d and 0 + d == d
    assert d * 1 == d and 1 * d == d
    assert d - d == 0 and type(d - d) is int
    assert d * 0 == 0
    assert (d + e) - e == d
    assert d + e == e + d
    assert d * e == e * d
    assert d // 1 == d
    assert d % 1 == 0
    assert (k * d) // k == d
    assert (k * d) % k == 0
    assert (k * d + e * k) // k == d + e
    assert exact_div(k * d, k) == d
    assert (d // k) * k + d % k == d
    assert ((d // k) + e) // 1 == d // k + e


@LIGHT
@given(trees(), st.integers(1, 7), st.integers(1, 7), envs)
def test_nested_floordiv(tree, a, b, env):
    d = build(tree)
    x = evaluate(tree, env)
    # always equal in value ...
    assert subs((d // a) // b, env) == subs(d // (a * b), env) == x // (a * b)
    assert subs(d % a, env) == x % a
    assert 0 <= subs(d % a, env) < a
    # ... but not always in structure: the canonical form does not know every relation
    # between atoms, e.g. ((N % 2) // 2) // 2 is 0 yet (N % 2) // 4 is
    # -(N // 2) + (N + 2*(N // 2)) // 4.


@LIGHT
@given(st.sets(st.sampled_from(SYMS), min_size=1), st.integers(-30, 30), st.integers(1, 7), st.integers(1, 7))
def test_nested_floordiv_merges_structurally(names, c, a, b):
    # a sum of distinct symbols plus a constant: nested divisions merge into one
    d = sum((sym(s) for s in sorted(names)), c)
    assert (d // a) // b == d // (a * b)
    assert ((d // a) + c) // b == (d + c * a) // (a * b)


@PROPS
@given(trees(), trees())
def test_hash_eq_consistent(t1, t2):
    d1, d2 = build(t1), build(t2)
    assert d1 == build(t1)
    assert (d1 == d2) == (d2 == d1)
    assert (d1 == d2) != (d1 != d2)
    if d1 == d2:
        assert hash(d1) == hash(d2)
        assert str(d1) == str(d2)
    # structurally equal values built independently behave as one dict key
    assert len({d1, build(t1)}) == 1
    if isinstance(d1, Expr):
        assert (d1 == d2) == (isinstance(d2, Expr) and str(d1) == str(d2))


# -- polynomial identity: + - * trees that agree everywhere are structurally equal ---------


SMALL_RING = trees(ring_only=True, max_leaves=3)


def rewrite(tree, draw):
    """A random tree equal to ``tree`` as a polynomial (a chain of ring-law rewrites)."""
    if not isinstance(tree, tuple):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            return tree
        if choice == 1:
            x = draw(SMALL_RING)
            return ("-", ("+", tree, x), x)  # t == (t + x) - x
        if choice == 2:
            return ("*", 1, tree)
        return ("+", ("*", 0, draw(leaves)), tree)
    op, a, b = tree
    a, b = rewrite(a, draw), rewrite(b, draw)
    choice = draw(st.integers(0, 4))
    if choice == 1 and op in "+*":
        return (op, b, a)  # commutativity
    if choice == 2 and op == "-":
        return ("+", a, ("*", -1, b))
    if choice == 3 and op == "*" and isinstance(b, tuple) and b[0] in "+-":
        return (b[0], ("*", a, b[1]), ("*", a, b[2]))  # distributivity
    if choice == 4 and op in "+*" and isinstance(a, tuple) and a[0] == op:
        return (op, a[1], (op, a[2], b))  # associativity
    return (op, a, b)


def agree_on_grid(t1, t2):
    """Do the trees agree on {0..d}^3, d bounding both degrees? For polynomials with degree
    at most d in each variable this decides identity."""
    d = max(degree(t1), degree(t2))
    for vals in itertools.product(range(d + 1), repeat=len(SYMS)):
        env = dict(zip(SYMS, vals))
        if evaluate(t1, env) != evaluate(t2, env):
            return False
    return True


RING = trees(ring_only=True, max_leaves=8)


@PROPS
@given(RING, st.data())
def test_ring_rewrites_give_identical_canonical_forms(tree, data):
    other = rewrite(tree, data.draw)
    rng = random.Random(0)
    for _ in range(20):
        env = {s: rng.randint(-1000, 1000) for s in SYMS}
        assert evaluate(tree, env) == evaluate(other, env)
    a, b = build(tree), build(other)
    assert a == b, f"{tree} -> {a}\n{other} -> {b}"
    assert hash(a) == hash(b)
    assert str(a) == str(b)


@PROPS
@given(RING, RING)
def test_polynomial_identity(t1, t2):
    a, b = build(t1), build(t2)
    rng = random.Random(1)
    points = [{s: rng.randint(-(10**6), 10**6) for s in SYMS} for _ in range(30)]
    random_agree = all(evaluate(t1, env) == evaluate(t2, env) for env in points)
    if random_agree:
        assert a == b and hash(a) == hash(b)
    # exact version: structural equality <=> equal on a grid large enough to decide identity
    assume(max(degree(t1), degree(t2)) <= 6)
    assert (a == b) == agree_on_grid(t1, t2)


@LIGHT
@given(RING, st.integers(-3, 3), st.integers(-3, 3))
def test_polynomial_identity_near_misses(tree, delta, which):
    # a tree perturbed by a nonzero constant is never equal to the original
    assume(delta != 0)
    a = build(tree)
    b = build(("+", tree, delta)) if which >= 0 else build(("-", tree, -delta))
    assert a != b
    assert b - a == delta


# -- single floor division: extensional equality implies structural equality --------------


affine = st.tuples(st.integers(-12, 12), st.integers(-12, 12), st.integers(-12, 12))


def floor_expr(p, q, k, h=H, t=T):
    """p_H*h + p_T*t + p_0 + (q_H*h + q_T*t + q_0) // k, symbolic by default"""
    return (p[0] * h + p[1] * t + p[2]) + (q[0] * h + q[1] * t + q[2]) // k


@settings(max_examples=300, deadline=None)
@given(affine, affine, st.integers(1, 8), affine, affine, st.integers(1, 8))
def test_single_floordiv_is_canonical(p1, q1, k1, p2, q2, k2):
    d1, d2 = floor_expr(p1, q1, k1), floor_expr(p2, q2, k2)
    # Each is linear plus a part periodic in H and in T with period dividing k1*k2, so
    # agreeing on [0, k1*k2]^2 means agreeing everywhere.
    n = k1 * k2
    agree = all(
        floor_expr(p1, q1, k1, h, t) == floor_expr(p2, q2, k2, h, t)
        for h in range(n + 1)
        for t in range(n + 1)
    )
    assert (d1 == d2) == agree, f"{d1} vs {d2}"
    assert subs(d1, {"H": n, "T": 3}) == floor_expr(p1, q1, k1, n, 3)


def test_arithmetic_with_an_int_is_the_general_arithmetic():
    """Sums and products with an int take a short path (the terms keep their order): the
    same canonical result as the general path, which an Expr operand takes."""
    H, W = sym("H"), sym("W")
    exprs = [H, H + 1, 2 * H * W - 3, (H + 1) // 2 + W, H * H - W // 3, Expr.of(0), Expr.of(5)]
    for e in exprs:
        for k in (-3, -1, 0, 1, 2, 7):
            for got, want in ((e + k, e + Expr.of(k)), (e * k, e * Expr.of(k)), (k + e, Expr.of(k) + e),
                              (k * e, Expr.of(k) * e), (e - k, e - Expr.of(k))):
                assert got == want and type(got) is type(want), (e, k, got, want)
                if isinstance(got, Expr):
                    assert got.terms == Expr(dict(got.terms)).terms and hash(got) == hash(want)
