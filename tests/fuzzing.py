"""Fuzzing netc: random specs, mutations, and the invariants every input must keep.

Two sources of inputs, both hypothesis strategies:

- :func:`specs` -- a grammar-aware generator of small models built from the op catalogue
  with plausible arguments (blocks with shape patterns, consts, ``let`` layers, tuples,
  repetition, ``if``/``else``, cells run by ``scan``, pairs), tracking shapes so that most
  of them are well-formed; :func:`perturbed_specs` then deletes, duplicates, swaps and
  replaces tokens (wrong numbers, unknown names, keywords) to make them nearly well-formed.
- :func:`mutated_examples` -- byte and token mutations of every ``examples/*.net``.

The invariants (:func:`check_invariants`): ``netc check`` run in-process ends within a time
bound with exit 0, or exit 1 with diagnostics whose first line is ``<path>:L:C: error: ``;
never a traceback, an internal error or another exit code. What it accepts, both backends
build and run on the declared shapes, and agree (:func:`check_backends`).

Used by ``tests/test_fuzz.py`` (the CI-sized run) and ``tests/fuzz_long.py`` (the long run).
"""

from __future__ import annotations

import contextlib
import gc
import io
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {p.name: p.read_text() for p in sorted((ROOT / "examples").glob("*.net"))}
TIME_LIMIT = 5.0  # seconds per input

# Names a spec may use that generated Python must not trip over: keywords, builtins, names
# the emitted code itself uses, dunders, and ordinary ones.
TRICKY = ["lambda", "def", "class", "import", "from", "yield", "None", "True", "print", "exec", "eval",
          "open", "__import__", "__init__", "__class__", "__dict__", "_", "__", "self", "super", "object",
          "type", "torch", "nn", "F", "np", "math", "weights", "prefix", "forward", "load_weights",
          "layer", "training", "state_dict", "Module", "Attention", "os", "sys", "x", "y", "h", "out", "__x",
          "_1", "__1", "__", "___", "_x_", "_modules", "_parameters", "T_destination", "cuda", "to", "eval"]
PLAIN = ["a", "b", "feat", "hid", "z", "enc", "dec", "stem", "head", "body", "fc", "conv", "mix"]
MODEL_NAMES = ["Net", "Model", "Encoder", "Decoder", "Generator", "Disc", "type", "object", "print",
               "Module", "Attention", "nn", "torch", "lambda", "__init__", "Sequential", "ModuleList", "__Net",
               "_M", "forward", "np", "Linear"]


# -- shapes the generator tracks ------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """The type of the value flowing through a pipeline (N is the only symbol)."""

    kind: str  # "img" [N, C, H, W], "seq" [N, T, D], "vec" [N, F], "tok" int[N, T]
    dims: tuple[int, ...]

    def text(self) -> str:
        dtype = "int" if self.kind == "tok" else "float"
        return f"{dtype}[{', '.join(['N'] + [str(d) for d in self.dims])}]"


def _choice(draw, options):
    return draw(st.sampled_from(options))


def _name(draw, pool=None) -> str:
    return _choice(draw, pool or (PLAIN + TRICKY))


# -- stages: one op in a pipeline, applicable to a shape --------------------------------------

ACTS = ["relu", "gelu", "silu", "tanh", "sigmoid", "leaky_relu(0.2)", "dropout(0.1)", "abs"]


def _img_stage(draw, s: Shape, ctx) -> tuple[str, Shape]:
    c, h, w = s.dims
    opts = ["conv", "act", "bn", "ln", "softmax"]
    if h >= 2 and w >= 2:
        opts += ["pool", "pool"]
    if h * 2 <= 12 and w * 2 <= 12:
        opts += ["up", "convt"]
    opts += ["gnorm", "gap", "flat", "adapt"]
    kind = _choice(draw, opts)
    if kind == "conv":
        out = draw(st.integers(1, 4))
        k = draw(st.integers(1, 3))
        stride = draw(st.sampled_from([1, 1, 2]))
        pad = draw(st.sampled_from([0, 1, "same"] if stride == 1 else [0, 1]))
        p = 0 if pad == "same" else pad
        ho, wo = (h + 2 * p - k) // stride + 1, (w + 2 * p - k) // stride + 1
        if pad == "same":
            ho, wo = h, w
        if ho < 1 or wo < 1:
            return "relu", s
        args = [str(out), ctx.const_or(k) if draw(st.booleans()) else str(k)]
        if stride != 1:
            args.append(f"stride={stride}")
        if pad != 0:
            args.append('padding="same"' if pad == "same" else f"padding={pad}")
        if draw(st.booleans()):
            args.append(f"bias={_choice(draw, ['true', 'false'])}")
        return f"conv2d({', '.join(args)})", Shape("img", (out, ho, wo))
    if kind == "convt":
        out = draw(st.integers(1, 3))
        k = draw(st.integers(1, 3))
        stride = draw(st.sampled_from([1, 2]))
        return f"conv_transpose2d({out}, {k}, stride={stride})", \
            Shape("img", (out, (h - 1) * stride + k, (w - 1) * stride + k))
    if kind == "pool":
        k = 2
        op = _choice(draw, ["maxpool2d", "avgpool2d"])
        return f"{op}({k})", Shape("img", (c, h // k, w // k))
    if kind == "up":
        mode = _choice(draw, ['', ', mode="nearest"', ', mode="bilinear"'])
        return f"upsample(2{mode})", Shape("img", (c, h * 2, w * 2))
    if kind == "bn":
        return "batchnorm", s
    if kind == "ln":
        return "layernorm", s
    if kind == "softmax":
        return f"softmax(dim={_choice(draw, [1, -1])})", s
    if kind == "gnorm":
        g = _choice(draw, [d for d in (1, 2, 3, 4) if c % d == 0])
        return f"groupnorm({g})", s
    if kind == "gap":
        return "global_avgpool", Shape("vec", (c,))
    if kind == "flat":
        return "flatten", Shape("vec", (c * h * w,))
    if kind == "adapt":
        size = draw(st.integers(1, 2))
        return f"adaptive_avgpool2d({size})", Shape("img", (c, size, size))
    return _choice(draw, ACTS), s


def _seq_stage(draw, s: Shape, ctx) -> tuple[str, Shape]:
    t, d = s.dims
    kind = _choice(draw, ["linear", "linear", "act", "ln", "attn", "rnn", "pos", "softmax", "mean", "flat",
                          "transpose", "conv1d", "pool1d", "scan"])
    if kind == "linear":
        out = draw(st.integers(1, 8))
        return f"linear({out})", Shape("seq", (t, out))
    if kind == "ln":
        return "layernorm", s
    if kind == "attn":
        heads = _choice(draw, [k for k in (1, 2, 4) if d % k == 0])
        causal = ", causal=true" if draw(st.booleans()) else ""
        return f"self_attention({heads}{causal})", s
    if kind == "rnn":
        op = _choice(draw, ["lstm", "gru", "rnn"])
        hidden = draw(st.integers(1, 5))
        bi = draw(st.booleans())
        layers = draw(st.integers(1, 2))
        extra = (", bidirectional=true" if bi else "") + (f", layers={layers}" if layers > 1 else "")
        return f"{op}({hidden}{extra})", Shape("seq", (t, hidden * (2 if bi else 1)))  # a tuple: caller unpacks
    if kind == "pos" and d % 2 == 0:
        return "positional_encoding", s
    if kind == "softmax":
        return _choice(draw, ["softmax", "log_softmax", "softmax(dim=1)"]), s
    if kind == "mean":
        op = _choice(draw, ["mean", "sum"])
        return f"{op}(1)", Shape("vec", (d,))
    if kind == "flat":
        return "flatten", Shape("vec", (t * d,))
    if kind == "transpose":
        return "transpose(1, 2)", Shape("seq", (d, t))
    if kind == "conv1d":
        out = draw(st.integers(1, 4))
        k = draw(st.integers(1, 3))
        if d - k + 1 < 1:
            return "relu", s
        return f"conv1d({out}, {k})", Shape("seq", (out, d - k + 1))
    if kind == "pool1d" and d >= 2:
        return f"{_choice(draw, ['maxpool1d', 'avgpool1d'])}(2)", Shape("seq", (t, d // 2))
    if kind == "scan" and ctx.cell:
        hidden = draw(st.integers(1, 4))
        return f"scan({ctx.cell}, hidden={hidden})", Shape("seq", (t, hidden))
    return _choice(draw, ACTS), s


def _vec_stage(draw, s: Shape, ctx) -> tuple[str, Shape]:
    (f,) = s.dims
    kind = _choice(draw, ["linear", "linear", "act", "bn", "ln", "softmax", "reshape"])
    if kind == "linear":
        out = draw(st.integers(1, 8))
        arg = ctx.const_or(out) if draw(st.booleans()) else str(out)
        bias = ", bias=false" if draw(st.integers(0, 4)) == 0 else ""
        return f"linear({arg}{bias})", Shape("vec", (out,))
    if kind == "bn":
        return "batchnorm", s
    if kind == "ln":
        return "layernorm", s
    if kind == "softmax":
        return _choice(draw, ["softmax", "log_softmax"]), s
    if kind == "reshape" and f % 2 == 0 and f > 2:
        return f"reshape(N, 2, {f // 2})", Shape("seq", (2, f // 2))
    return _choice(draw, ACTS), s


def _stage(draw, s: Shape, ctx) -> tuple[str, Shape]:
    if s.kind == "tok":
        dim = draw(st.integers(1, 4)) * 2
        return f"embedding({draw(st.integers(2, 9))}, {dim})", Shape("seq", (s.dims[0], dim))
    return {"img": _img_stage, "seq": _seq_stage, "vec": _vec_stage}[s.kind](draw, s, ctx)


# -- declarations -----------------------------------------------------------------------------


class Ctx:
    """What the spec declared so far: consts, blocks (with the shape kind each preserves), a cell."""

    def __init__(self):
        self.consts: dict[int, str] = {}
        self.blocks: dict[str, str] = {}  # name -> shape kind it maps to itself
        self.cell: str | None = None
        self.decls: list[str] = []

    def const_or(self, value: int) -> str:
        return self.consts.get(value, str(value))


def _consts(draw, ctx: Ctx) -> None:
    for _ in range(draw(st.integers(0, 2))):
        name = _choice(draw, ["K", "W", "WIDTH", "P", "MODE", "PAIR", "FLAG"])
        if any(d.startswith(f"const {name} ") for d in ctx.decls):
            continue
        value = draw(st.integers(1, 4))
        form = _choice(draw, ["lit", "expr", "tuple", "str", "float", "bool", "cond"])
        text = {"lit": str(value), "expr": f"{value * 2} // 2", "tuple": f"({value}, {value})",
                "str": '"nearest"', "float": "0.25", "bool": "true or false",
                "cond": f"if {value} > 2 then {value} else {value} * 1"}[form]
        ctx.decls.append(f"const {name} = {text}")
        if form in ("lit", "expr", "cond"):
            ctx.consts.setdefault(value, name)


def _block(draw, ctx: Ctx) -> None:
    """A shape-preserving block over images or sequences, using its bound dims."""
    kind = _choice(draw, ["img", "seq"])
    name = _choice(draw, ["Res", "Block", "Layer", "Mix", "type", "Module", "print", "__Blk", "_B", "super"])
    if name in ctx.blocks or name == ctx.cell:
        return
    if kind == "img":
        params = "x: [N, C, H, W], k: int = 3, act: str = \"relu\""
        body = [f"y = x -> conv2d(C, k, padding=k // 2) -> {_choice(draw, ['batchnorm', 'relu', 'gelu'])}",
                _choice(draw, ["skip = if C == 1 then x else x * 0.5",
                               "skip = if k == 3 and C > 0 then x else x -> conv2d(C, 1)",
                               "skip = x"]),
                _choice(draw, ["return relu(y + skip)", "return y + skip -> relu", "return y"])]
    else:
        params = "x: [N, T, D], ff: int = 2 * D, p: float = 0.1"
        body = [_choice(draw, ["h = x -> linear(ff) -> relu -> dropout(p) -> linear(D)",
                               "h = x -> layernorm -> linear(D // 1)",
                               "h: [N, T, D] = x -> gelu",
                               "a, b = (x, x -> tanh)\n    h = a * b"]),
                _choice(draw, ["return x + h -> layernorm", "return (x + h) / 2", "return h"])]
    ctx.blocks[name] = kind
    ctx.decls.append(f"block {name}({params}) {{\n    " + "\n    ".join(body) + "\n}")


def _cell(draw, ctx: Ctx) -> None:
    name = _choice(draw, ["Elman", "Cell", "Step", "lambda", "__Cell", "forward"])
    act = _choice(draw, ["tanh", "sigmoid", "relu"])
    if draw(st.booleans()):
        ctx.decls.append(f"cell {name}(x: [N, I], h: [N, H]) -> [N, H] {{\n"
                         f"    return {act}(linear(x, H) + linear(h, H, bias=false))\n}}")
    else:
        ctx.decls.append(f"cell {name}(x: [N, I], h: [N, H], c: [N, H]) -> (h: [N, H], c: [N, H]) {{\n"
                         "    gates = linear(x, 4 * H) + linear(h, 4 * H, bias=false)\n"
                         "    i, f, g, o = split(gates, H, dim=1)\n"
                         "    c = sigmoid(f) * c + sigmoid(i) * tanh(g)\n"
                         f"    h = sigmoid(o) * {act}(c)\n"
                         "    return h, c\n}")
    ctx.cell = name


def _input_shape(draw) -> Shape:
    kind = _choice(draw, ["img", "seq", "vec", "tok"])
    if kind == "img":
        return Shape("img", (draw(st.integers(1, 3)), draw(st.integers(2, 6)), draw(st.integers(2, 6))))
    if kind == "seq":
        return Shape("seq", (draw(st.integers(1, 4)), draw(st.integers(1, 4)) * 2))
    if kind == "vec":
        return Shape("vec", (draw(st.integers(1, 8)),))
    return Shape("tok", (draw(st.integers(1, 4)),))


def _model_body(draw, ctx: Ctx, inp: str, s: Shape, max_stmts: int = 4):
    """Statements that transform the input; returns (lines, result shape, result expression)."""
    lines: list[str] = []
    cur, used = inp, {inp}
    for _ in range(draw(st.integers(1, max_stmts))):
        form = _choice(draw, ["pipe", "pipe", "pipe", "residual", "block", "let", "cond", "claim", "tuple"])
        target = _name(draw)
        if target in used and target != cur:
            target = cur
        if form == "block" and any(k == s.kind for k in ctx.blocks.values()):
            b = _choice(draw, sorted(n for n, k in ctx.blocks.items() if k == s.kind))
            n = draw(st.integers(1, 3))
            rep = f" * {ctx.const_or(n) if draw(st.booleans()) else n}" if n > 1 or draw(st.booleans()) else ""
            args = _choice(draw, ["", "()", "(1)" if s.kind == "img" else "(4)", "(k=1)" if s.kind == "img"
                                  else "(p=0.0)"])
            lines.append(f"{target} = {cur} -> {b}{args}{rep}")
        elif form == "residual" and s.kind != "tok":
            stage, s2 = _stage(draw, s, ctx)
            if s2 != s or stage.split("(")[0] in ("lstm", "gru", "rnn"):
                stage = "relu"
            op = _choice(draw, ["+", "-", "*"])
            lines.append(f"{target} = {cur} {op} ({cur} -> {stage})" + (" -> layernorm" if draw(st.booleans())
                                                                          else ""))
        elif form == "let" and s.kind in ("vec", "seq"):
            layer = _name(draw, ["fc", "shared", "proj", "lambda", "self", "weights"])
            d = s.dims[-1]
            lines.append(f"let {layer} = linear({d})")
            lines.append(f"{target} = {cur} -> {layer} -> {_choice(draw, ['relu', 'tanh'])} -> {layer}")
        elif form == "cond" and s.kind != "tok":
            cond = _choice(draw, ["true", "false", "1 < 2", f"{s.dims[0]} == {s.dims[0]}", "not true"])
            lines.append(f"{target} = if {cond} then {cur} -> relu else {cur} -> tanh")
        elif form == "claim":
            lines.append(f"{target}: {s.text().replace('float', '')} = {cur}")
        elif form == "tuple" and s.kind != "tok":
            a, b = _name(draw, PLAIN), _name(draw, ["_"] + TRICKY)
            if a == b:
                b = "_"
            lines.append(f"{a}, {b} = ({cur}, {cur} -> relu)")
            target = a
        else:
            stages = []
            for _ in range(draw(st.integers(1, 4))):
                stage, s2 = _stage(draw, s, ctx)
                if stage.split("(")[0] in ("lstm", "gru", "rnn"):
                    if stages:
                        lines.append(f"{target} = {cur} -> {' -> '.join(stages)}")
                        cur = target
                        used.add(cur)
                    state = _choice(draw, ["_", "state", "hn"])
                    lines.append(f"{target}, {state} = {cur} -> {stage}")
                    stages = []
                    cur, s = target, s2
                    used.add(cur)
                    continue
                stages.append(stage)
                s = s2
            if stages:
                lines.append(f"{target} = {cur} -> {' -> '.join(stages)}")
            else:
                continue
        cur = target
        used.add(cur)
    return lines, s, cur


def _model(draw, ctx: Ctx, name: str, inp_shape: Shape | None = None, returns: str = "one"):
    inp = _name(draw)
    s = inp_shape or _input_shape(draw)
    lines, out, var = _model_body(draw, ctx, inp, s)
    params = [f"{inp}: {s.text()}"]
    if draw(st.booleans()):
        params.append(f"{_choice(draw, ['scale', 'n', 'classes'])}: int = {draw(st.integers(1, 4))}")
    if returns == "two" and out.kind != "tok":
        other = _name(draw, PLAIN)
        lines.append(f"{other} = {var} -> relu")
        ret = f"return {var}, {other}"
        sig = f" -> ({_name(draw, PLAIN)}: {out.text()}, {out.text()})" if draw(st.booleans()) else ""
    else:
        ret = f"return {var}"
        sig = f" -> {out.text()}" if draw(st.booleans()) else ""
    body = "\n    ".join(lines + [ret])
    return f"model {name}({', '.join(params)}){sig} {{\n    {body}\n}}", out


@st.composite
def specs(draw) -> str:
    """A small spec: consts, blocks, maybe a cell, one or two models, maybe a pair."""
    ctx = Ctx()
    _consts(draw, ctx)
    for _ in range(draw(st.integers(0, 2))):
        _block(draw, ctx)
    if draw(st.integers(0, 3)) == 0:
        _cell(draw, ctx)
    first = _choice(draw, MODEL_NAMES)
    if draw(st.integers(0, 4)) == 0:  # a pair: the second model takes the first's output
        second = _choice(draw, [m for m in MODEL_NAMES if m != first])
        text1, out = _model(draw, ctx, first)
        if out.kind == "tok":
            return _join(ctx.decls + [text1])
        text2, _ = _model(draw, ctx, second, inp_shape=out)
        roles = _choice(draw, [("generator", "discriminator"), ("encoder", "decoder")])
        pair = _choice(draw, ["GAN", "AE", "Pair", "type", "lambda"])
        ctx.decls += [text1, text2, f"pair {pair} {{\n    {roles[0]}: {first}\n    {roles[1]}: {second}\n}}"]
    else:
        text, _ = _model(draw, ctx, first, returns=_choice(draw, ["one", "one", "two"]))
        ctx.decls.append(text)
    order = draw(st.permutations(ctx.decls)) if draw(st.booleans()) else ctx.decls
    head = ['import "std/vision.net"'] if draw(st.integers(0, 9)) == 0 else []
    return _join(head + list(order))


def _join(decls: list[str]) -> str:
    return "\n\n".join(decls) + "\n"


# -- mutations --------------------------------------------------------------------------------

TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*|\d+\.\d*(?:[eE][-+]?\d+)?|\d+|->|==|!=|<=|>=|//'
                   r"|#[^\n]*|\s+|.", re.DOTALL)
NUMBERS = ["0", "-1", "1", "2", "3", "7", "64", "4096", "4097", "1000000", "99999999999999999999", "1.5",
           "0.0", "1e309", "-0", "00", "1e-9", "2147483648", "123456789012345678901234567890"]
WORDS = ["unknown", "N", "T", "C", "_", "x", "if", "then", "else", "return", "let", "model", "block", "import",
         "true", "false", "None", "relu", "linear", "lstm", "scan", "self", "__init__", "lambda", "a" * 120,
         "float", "int", "bool", "str", "tuple"]
PUNCT = ["->", "(", ")", "[", "]", "{", "}", ",", "=", ":", "*", "+", "-", "/", "//", "%", "@", "==", "<",
         '"same"', '"x\\" + y"', "#", "\n", ".", ";", "→", "\x00", "é", "а"]


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


@st.composite
def token_mutation(draw, text: str) -> str:
    toks = tokens(text)
    for _ in range(draw(st.integers(1, 3))):
        if not toks:
            toks = [draw(st.sampled_from(PUNCT + WORDS))]
            continue
        i = draw(st.integers(0, len(toks) - 1))
        kind = draw(st.sampled_from(["delete", "dup", "swap", "number", "name", "insert", "span"]))
        tok = toks[i]
        if kind == "delete":
            del toks[i]
        elif kind == "dup":
            toks.insert(i, tok)
        elif kind == "swap" and i + 1 < len(toks):
            toks[i], toks[i + 1] = toks[i + 1], toks[i]
        elif kind == "number":
            nums = [j for j, t in enumerate(toks) if t[:1].isdigit()] or [i]
            toks[draw(st.sampled_from(nums))] = draw(st.sampled_from(NUMBERS))
        elif kind == "name":
            names = [j for j, t in enumerate(toks) if re.match(r"[A-Za-z_]", t)] or [i]
            pool = WORDS + sorted({t for t in toks if re.match(r"[A-Za-z_]", t)})
            toks[draw(st.sampled_from(names))] = draw(st.sampled_from(pool))
        elif kind == "span" and len(toks) > 2:
            j = draw(st.integers(0, len(toks) - 1))
            a, b = sorted((i, j))
            piece = toks[a:b + 1]
            toks[a:b + 1] = [] if draw(st.booleans()) else piece + piece
        else:
            toks.insert(i, " " + draw(st.sampled_from(PUNCT + WORDS + NUMBERS)) + " ")
    return "".join(toks)


@st.composite
def byte_mutation(draw, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "dup", "truncate"]))
        i = draw(st.integers(0, max(len(buf) - 1, 0)))
        if kind == "flip" and buf:
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and buf:
            buf[i] = draw(st.sampled_from(list(b"(){}[]<>-=,:*\"\\#\n0123456789_aZ \t\x00\xff\xc3")))
        elif kind == "insert":
            buf[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del buf[i:i + draw(st.integers(1, 32))]
        elif kind == "dup":
            j = i + draw(st.integers(1, 64))
            buf[j:j] = buf[i:j]
        else:
            del buf[i:]
    return bytes(buf)


@st.composite
def perturbed_specs(draw) -> str:
    return draw(token_mutation(draw(specs())))


@st.composite
def mutated_examples(draw) -> bytes:
    name = draw(st.sampled_from(sorted(EXAMPLES)))
    text = EXAMPLES[name]
    if draw(st.booleans()):
        return draw(byte_mutation(text.encode()))
    return draw(token_mutation(text)).encode("utf-8", "surrogatepass")


# -- invariants -------------------------------------------------------------------------------


class Hang(BaseException):
    """Raised by the timers: a BaseException, so netc's own ``except Exception`` cannot eat it."""


@contextlib.contextmanager
def time_limit(seconds: float, wall: float | None = None):
    """At most ``seconds`` of the calling thread's CPU time and ``wall`` seconds of real time
    (default 12 x ``seconds``: a check blocked on a read). Raises Hang; also when the first
    raise landed somewhere that swallowed it (a gc callback prints "Exception ignored" and
    goes on).

    The thread's clock, not the process's: neither other jobs on a busy machine nor other
    threads of this process (an OpenMP pool that torch left spinning after a test before, in
    the same pytest worker) count against netc, which checks on this thread. A watchdog thread
    reads that clock and signals this thread when the budget is spent."""
    fired: list[str] = []
    cpu_msg, wall_msg = f"no result within {seconds} s of CPU time", f"no result within {wall or 12 * seconds} s"

    def on_timer(signum, frame):
        fired.append(cpu_msg if signum == signal.SIGPROF else wall_msg)
        raise Hang(fired[-1])

    me = threading.get_ident()
    clock = time.pthread_getcpuclockid(me)
    start, done = time.clock_gettime(clock), threading.Event()

    def watch():
        while not done.wait(0.02):
            if time.clock_gettime(clock) - start >= seconds:
                signal.pthread_kill(me, signal.SIGPROF)
                return

    old = {sig: signal.signal(sig, on_timer) for sig in (signal.SIGPROF, signal.SIGALRM)}
    signal.setitimer(signal.ITIMER_REAL, wall or 12 * seconds)
    watchdog = threading.Thread(target=watch, name="netc-fuzz-time-limit", daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        done.set()
        signal.setitimer(signal.ITIMER_REAL, 0)
        watchdog.join()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if fired:
        raise Hang(fired[0])


def run_check(path: Path, *extra: str) -> tuple[int, str, str]:
    """``netc check path`` in-process: (exit code, stdout, stderr)."""
    from netc.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), time_limit(TIME_LIMIT):
        try:
            code = main(["check", str(path), *extra])
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


_checked = [0]


def check_invariants(path: Path, data: bytes | str) -> int:
    """Write ``data`` to ``path``, check it, assert the invariants; the exit code."""
    _checked[0] += 1
    if _checked[0] % 256 == 1:
        # a long run piles up live objects (hypothesis' state, modules built by the backend
        # checks, and in a pytest worker whatever the tests before left: reference models,
        # transformers' modules) that every garbage collection would scan again, billing
        # netc's CPU time: collect, then set what survives aside, from the first check on
        gc.collect()
        gc.freeze()
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    code, out, err = run_check(path)
    shown = data if isinstance(data, str) else data.decode("utf-8", "replace")
    assert "Traceback" not in out + err, f"traceback for:\n{shown}\n{err}"
    assert "internal error" not in err, f"internal error for:\n{shown}\n{err}"
    assert code in (0, 1), f"exit {code} for:\n{shown}\n{err}"
    if code == 1:
        first = err.splitlines()[0] if err else ""
        from netc.compiler.loader import display_path

        where = "|".join(re.escape(p) for p in {str(path), display_path(str(path))})
        ok = re.match(rf"^({where}|std/[\w/]+\.net):\d+:\d+: error: ", first)
        assert ok, f"bad first diagnostic line {first!r} for:\n{shown}\n{err}"
    else:
        assert err == "", f"exit 0 with stderr for:\n{shown}\n{err}"
    return code


def rel_diff(got, want) -> float:
    """Largest difference relative to the reference's scale (absolute below scale 1). Where
    either side is not finite, both must be (NaN and ±Inf count alike: past an overflow the
    libraries' special cases differ, torch's gelu(inf) is NaN, the exact value is inf), and
    the finite rest is compared; a non-finite value on one side only is an infinite difference."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    bad_got, bad_want = ~np.isfinite(got), ~np.isfinite(want)
    if (bad_got != bad_want).any():
        return float("inf")
    got, want = got[~bad_got], want[~bad_want]
    scale = np.abs(want).max() if want.size else 0.0
    diff = np.abs(got - want).max(initial=0)
    return float(diff / scale) if scale > 1 else float(diff)


def check_backends(path: Path, seed: int = 0, levels: tuple[int, ...] = (0,)) -> int:
    """Every model of an accepted spec: torch (eval) and NumPy with its weights agree on
    random inputs of the declared types, with outputs of the declared shapes. Returns how
    many models were compared.

    Agreement is float32 rel 1e-4; where that fails, both run again in float64, which must
    agree to 1e-9: a float32 miss with a float64 match is ill-conditioning (layernorm of a
    nearly constant vector), not a disagreement between the backends."""
    from netc.runtime.inputs import bind_sizes, concrete_shape, random_inputs

    import netc

    prog = netc.compile_file(str(path))
    prog.diagram(None, depth=1)  # the other consumers of the IR: diagram and folded summary
    compared = 0
    for name in prog.models:
        if name in prog.pairs:
            prog.numpy_source(name)
            continue
        prog.summary(name, depth=1)
        graph = prog.graph(name)
        if not small(graph):
            continue  # a mutation asked for a big model: netc accepts it, but running it is not this test
        module = prog.to_torch(name).eval()
        ex = prog.to_numpy(name, weights=module.state_dict())
        inputs = random_inputs(graph, sizes={"N": 2}, seed=seed)
        arrays = [inputs[n.id] for n in graph.input_nodes()]
        got, want = _run_both(module, ex, arrays)
        assert len(got) == len(want), f"{name}: {len(got)} outputs, torch {len(want)}"
        env = bind_sizes(graph, {"N": 2})
        for (_, ref), g, w in zip(graph.outputs, got, want):
            declared = concrete_shape(graph.type_of(ref).shape, env)
            assert g.shape == w.shape == declared, f"{name}: numpy {g.shape}, torch {w.shape}, declared {declared}"
        base = {np.float32: want}  # the -O0 torch outputs the levels compare with, per dtype
        if any(rel_diff(g, w) > 1e-4 for g, w in zip(got, want)):
            got, want = _run_both(module.double(), ex.astype(np.float64),
                                  [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays])
            worst = max(rel_diff(g, w) for g, w in zip(got, want))
            assert worst <= 1e-9, f"{name}: max rel diff {worst:.3g} (float64)\n{path.read_text()}"
            base[np.float64] = want
            module.float()  # .double() converted it in place; the levels below start from float32
        for level in [lv for lv in levels if lv]:  # the optimised programs, with converted weights
            _check_level(prog, name, module, arrays, level, path, base)
        compared += 1
        _forget()
    return compared


def _check_level(prog, name: str, module, arrays: list, level: int, path: Path, base: dict) -> None:
    """Torch and NumPy at ``-O{level}`` (weights converted from ``module``'s) agree with the
    -O0 torch module: float32 rel 1e-4, else float64 rel 1e-9 (as for -O0). ``base``: the -O0
    torch outputs per dtype (float32 given; float64 computed here on first need, kept for the
    next level)."""
    sd = module.state_dict()
    opt = prog.to_torch(name, opt=level).eval()
    opt.load_state_dict(prog.convert_weights(name, sd, level))
    ex = prog.to_numpy(name, weights=sd, opt=level)
    for dtype in (np.float32, np.float64):
        xs = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
        got, want = _run_both(opt.double() if dtype == np.float64 else opt, ex if dtype == np.float32
                              else ex.astype(np.float64), xs)
        if dtype not in base:
            base[dtype] = _run_torch(module.double(), xs)
        want0 = base[dtype]
        worst = max(max(rel_diff(g, w0), rel_diff(w, w0)) for g, w, w0 in zip(got, want, want0))
        if worst <= (1e-4 if dtype == np.float32 else 1e-9):
            break
    else:
        raise AssertionError(f"{name}: -O{level} differs from -O0 by rel {worst:.3g} (float64)\n{path.read_text()}")
    module.float()


def _run_torch(module, arrays) -> list:
    import torch

    with torch.no_grad():
        want = module(*(torch.from_numpy(a) for a in arrays))
    return [w.numpy() for w in (want if isinstance(want, tuple) else (want,))]


def _run_both(module, ex, arrays) -> tuple[list, list]:
    want = _run_torch(module, arrays)
    got = ex(*arrays)
    got = got if isinstance(got, tuple) else (got,)
    return [np.asarray(g) for g in got], want


def small(graph, limit: int = 1_000_000) -> bool:
    """At most ``limit`` parameters, and no tensor with more than ``limit`` elements at N=2."""
    from netc.compiler.dims import subs
    from netc.runtime.inputs import bind_sizes

    if graph.param_count() > limit:
        return False
    env = bind_sizes(graph, {"N": 2})
    for n in graph.nodes():
        for t in n.types:
            numel = subs(t.numel(), env)
            if not isinstance(numel, int) or numel > limit:
                return False
    return True


def _forget() -> None:
    """Drop the generated modules from sys.modules (a long run builds thousands)."""
    for key in [k for k in sys.modules if k.startswith("netc_generated_")]:
        del sys.modules[key]
