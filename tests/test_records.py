"""compiler/records.py: the immutable value classes behave as frozen dataclasses did."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest
from netc.compiler import ast
from netc.compiler.records import Record, replace
from netc.compiler.source import SourceFile, Span
from netc.compiler.types import TensorType

import netc


class Point(Record):
    x: int
    y: int = 0
    label: str = ""
    _uncompared = ("label",)


def test_fields_defaults_and_keywords():
    assert Point._fields == ("x", "y", "label")
    assert Point(1).y == 0 and Point(1, 2).y == 2 and Point(x=1, y=3).y == 3 and Point(1, label="a").label == "a"
    for bad in (lambda: Point(), lambda: Point(1, 2, "a", 4), lambda: Point(1, x=2), lambda: Point(1, z=3),
                lambda: Point(1, self=3)):
        with pytest.raises(TypeError):
            bad()


def test_equality_hash_repr_and_immutability():
    assert Point(1, 2, "a") == Point(1, 2, "b") and hash(Point(1, 2, "a")) == hash(Point(1, 2, "b"))
    assert Point(1, 2) != Point(2, 1) and Point(1) != (1, 0)
    assert repr(Point(1, 2)) == "Point(x=1, y=2)"
    p = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.x
    for clone in (pickle.loads(pickle.dumps(p)), copy.deepcopy(p)):
        assert clone == p and clone.x == 1


def test_post_init_and_cached_properties():
    with pytest.raises(ValueError, match="element type"):
        TensorType("complex", (2,))
    src = SourceFile("a.net", "x\ny\n")
    assert src.lines == ["x", "y"] and src.position(2) == (2, 1)
    assert Span(src, 1, 1, 1, 2) == Span(src, 1, 1, 1, 2)


def test_ast_nodes_compare_without_spans_and_nest_as_deep_as_dataclasses():
    a = ast.Name(Span(None, 1, 1, 1, 2), "x")
    b = ast.Name(Span(None, 5, 5, 5, 6), "x")
    assert a == b and hash(a) == hash(b) and "span" not in repr(a)
    # hashing and comparing a nested expression take no more stack than a dataclass's methods
    # did (the compiler's depth limits were set by them): as deep as the dataclass goes, so do nodes
    @dataclasses.dataclass(frozen=True)
    class DUnary:
        op: str
        operand: object

    def deepest(make, leaf, check) -> int:
        """The deepest nesting ``check`` passes on (two equal towers built apart), up to 5000."""
        x, y = leaf, copy.deepcopy(leaf)
        for d in range(5000):
            try:
                check(x, y)
            except RecursionError:
                return d
            x, y = make(x), make(y)
        return 5000

    for check in (lambda x, y: hash(x), lambda x, y: x == y):
        reach = deepest(lambda e: DUnary("-", e), 1, check)
        assert 100 < reach < 5000
        assert deepest(lambda e: ast.Unary(a.span, "-", e), b, check) >= reach - 2


def test_replace_copies_a_record_with_fields_changed():
    p = Point(1, 2, "a")
    q = replace(p, y=5)
    assert (q.x, q.y, q.label) == (1, 5, "a") and (p.y, type(q)) == (2, Point)
    with pytest.raises(TypeError, match="no field 'z'"):
        replace(p, z=1)

    class Checked(Record):  # __post_init__ runs on the copy, as dataclasses.replace runs it
        n: int

        def __post_init__(self):
            if self.n < 0:
                raise ValueError("negative")

    with pytest.raises(ValueError, match="negative"):
        replace(Checked(1), n=-1)

    # an IR node stays itself: the copy is a new node, equal to nothing else
    g = netc.compile_file("examples/lenet.net").graph("LeNet")
    n = next(iter(g.nodes()))
    m = replace(n, names=("x",))
    assert m.names == ("x",) and m.id == n.id and m != n and m in {m} and n not in {m}

    @dataclasses.dataclass(frozen=True)
    class Plain:
        a: int
        b: int = 0

    assert replace(Plain(1), b=2) == Plain(1, 2)  # a dataclass: by dataclasses.replace
