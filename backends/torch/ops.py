"""The torch lowering of every op in the catalogue.

Each lowering gives the node's forward expression and, for an op with weights or state (and
dropout, so that ``train()``/``eval()`` switch it), the constructor of its own module, whose
``state_dict`` names are the catalogue's ``params()`` names. Sizes, flags and rates go through
``{}`` holes; an argument equal to torch's default is left out when it is a rarely changed
option (``bias``, ``dilation``, ``eps``), and always written when it usually varies from layer
to layer (``kernel_size``, ``stride``, ``padding``), so that the template of an op stays the
same across the instances of a block::

    conv2d(out=64, kernel=3, padding=1)  on [N, 3, 32, 32]
        module: nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1)
        expr:   self.conv2d(x)
"""

from __future__ import annotations

import math
from typing import Any

from netc.specs.ops.index import index_code

from .lower import Code, Lowered, LoweringError, lowering

# -- building templates ----------------------------------------------------------------------


def _pos(label: str, value: Any) -> Code:
    """A positional argument hole."""
    return Code("{}", [(label, value)])


def _kw(key: str, value: Any, label: str | None = None) -> Code:
    """A keyword argument hole, ``key={}``."""
    return Code(f"{key}={{}}", [(label or key, value)])


def _opt(key: str, value: Any, default: Any) -> Code | None:
    """``key={}``, or nothing when ``value`` is torch's default (an int default also matches
    a tuple of that int: ``dilation=(1, 1)``)."""
    same = value == default or (isinstance(value, tuple) and all(v == default for v in value))
    return None if same else _kw(key, value)


def _call(fn: str, *args: str | Code | None) -> Code:
    """``fn(arg, arg, ...)``; a str argument is literal text, None is left out."""
    parts = [Code(a) if isinstance(a, str) else a for a in args if a is not None]
    return Code(f"{fn}({', '.join(p.template for p in parts)})", [v for p in parts for v in p.values])


def _holes(label: str, values) -> Code:
    """``{}, {}, ...``: one hole per value, labelled ``label0``, ``label1``..."""
    return Code(", ".join("{}" for _ in values), [(f"{label}{i}", v) for i, v in enumerate(values)])


def _layer(module: Code, *inputs: str, unpack: str | None = None, helpers=()) -> Lowered:
    """A node that applies its own module to ``inputs`` (default ``{x0}``)."""
    return Lowered(_call("{m}", *(inputs or ("{x0}",))), module, unpack, frozenset(helpers))


def _fn(expr: Code, helpers=()) -> Lowered:
    return Lowered(expr, helpers=frozenset(helpers))


def _activated(a, low: Lowered) -> Lowered:
    """A layer with a fused activation (``activation``, set by -O2's fuse_activation): the
    activation around the layer's expression, in place where torch has an in-place form,
    ``torch.relu_(self.conv2d(x))``. The layer's result is a fresh tensor that nothing else
    reads, and neither a convolution's nor a linear layer's gradient needs it, so writing
    over it is safe, and it saves allocating (and first touching) one activation-sized
    buffer per layer: measurably faster on CPU (docs/performance.md)."""
    if a.activation is None:
        return low
    if a.activation == "leaky_relu":
        expr = _call("F.leaky_relu", low.expr, _pos("negative_slope", a.activation_slope), "inplace=True")
    elif a.activation == "silu":
        expr = _call("F.silu", low.expr, "inplace=True")
    else:  # relu, tanh, sigmoid in place; gelu has no in-place form
        template = IN_PLACE.get(a.activation) or _fixed(a.activation, "the fused activation")
        expr = Code(template.replace("{x0}", low.expr.template), low.expr.values)
    return Lowered(expr, low.module, low.unpack, low.helpers)


# -- ops whose expression is fixed text --------------------------------------------------------

FIXED = {
    "relu": "torch.relu({x0})",
    "gelu": "F.gelu({x0})",
    "silu": "F.silu({x0})",
    "tanh": "torch.tanh({x0})",
    "sigmoid": "torch.sigmoid({x0})",
    "relu6": "F.relu6({x0})",
    "hardsigmoid": "F.hardsigmoid({x0})",
    "hardswish": "F.hardswish({x0})",
    "add": "{x0} + {x1}",
    "sub": "{x0} - {x1}",
    "mul": "{x0} * {x1}",
    "div": "{x0} / {x1}",
    "matmul": "{x0} @ {x1}",
    "neg": "-{x0}",
    "abs": "torch.abs({x0})",
    "sqrt": "torch.sqrt({x0})",
    "exp": "torch.exp({x0})",
    "log": "torch.log({x0})",
    "sin": "torch.sin({x0})",
    "cos": "torch.cos({x0})",
    "rsqrt": "torch.rsqrt({x0})",
    "positions": "torch.arange({x0}.shape[1], device={x0}.device)",
}


def fixed(node, xs):
    return _fn(Code(FIXED[node.op]))


# FIXED's text is an op at its default attributes (a fused step or activation ``("gelu",
# None)``); an op whose attributes may differ has a lowering of its own below.
_OWN_LOWERING = frozenset({"gelu"})


def _fixed(op: str, what: str) -> str:
    """FIXED's text of ``op``, which ``what`` (a fused step or activation) needs."""
    if op not in FIXED:
        raise LoweringError(f"the torch backend cannot write {what} `{op}`: it has no fixed expression "
                            f"(add `{op}` to FIXED in backends/torch/ops.py)")
    return FIXED[op]


# The in-place form of an activation, written where its input is a fresh tensor that nothing
# else reads (``relu = torch.relu_(batchnorm)``, as torchvision writes ``nn.ReLU(inplace=True)``):
# it saves allocating and first touching an activation-sized buffer. The emitter decides
# where (``ScopeRenderer.overwritable``): after an op with the catalogue trait fresh_output
# (a new tensor whose gradient does not read it; not relu, tanh, sigmoid, exp, softmax,
# whose gradients read their outputs).
IN_PLACE = {
    "relu": "torch.relu_({x0})",
    "tanh": "torch.tanh_({x0})",
    "sigmoid": "torch.sigmoid_({x0})",
}


# An activation fused into a block's result from the op after the block (-O2: an epilogue of
# that block instance, compiler/passes/_epilogue.py): the module the block's one class is given
# for it, ``ConvBN(64, 64, 3, 1, activation=nn.ReLU(inplace=True))``; in place where the
# result is a fresh tensor whose gradient does not read it (as IN_PLACE).
_EPILOGUE = {
    "relu": "nn.ReLU({inplace})",
    "relu6": "nn.ReLU6({inplace})",
    "leaky_relu": "nn.LeakyReLU({slope}{inplace})",
    "silu": "nn.SiLU({inplace})",
    "hardsigmoid": "nn.Hardsigmoid({inplace})",
    "hardswish": "nn.Hardswish({inplace})",
    "gelu": "nn.GELU()",
    "tanh": "nn.Tanh()",
    "sigmoid": "nn.Sigmoid()",
}


def epilogue_module(op: str, slope: float | None, inplace: bool) -> str:
    """The module that applies the activation ``op`` (``slope``: leaky_relu's) to a block's result."""
    if op not in _EPILOGUE:
        raise LoweringError(f"the torch backend cannot apply `{op}` to a block's result "
                            f"(add it to _EPILOGUE in backends/torch/ops.py)")
    text = _EPILOGUE[op]
    flag = "inplace=True" if inplace else ""
    if "{slope}" in text:
        return text.format(slope=_number(slope) + (", " if flag else ""), inplace=flag)
    return text.format(inplace=flag)


for _name in FIXED.keys() - _OWN_LOWERING:
    lowering(_name)(fixed)


# -- a fused chain of elementwise ops: one expression -------------------------------------------

_BINARY = {"add": ("+", 1), "sub": ("-", 1), "mul": ("*", 2), "div": ("/", 2)}


@lowering("fused_elementwise")
def fused_elementwise(node, xs):
    """The chain as one Python expression, ``torch.sigmoid_({x0} * 0.5 + {x1})``: each step
    written as its own lowering writes it, with the parentheses that precedence needs; an
    activation with an in-place form (IN_PLACE) takes it where it reads the fresh result of
    an arithmetic step, as the unfused program's ``torch.tanh_(add)`` does (the out-of-place
    form allocated a buffer that -O0 did not: CharRNN's cell measured 4% slower)."""
    text, prec = "{x0}", 4  # precedence: 1 for + -, 2 for * /, 3 unary minus, 4 a name or a call
    fresh = False  # text is a new tensor that no gradient reads (an arithmetic step's result)
    for op, arg in node.attrs.steps:
        if op == "neg":
            text, prec = f"-{_wrap(text, prec, 4)}", 3
        elif op == "leaky_relu":
            text, prec = f"F.leaky_relu({text}, {_number(arg)})", 4
        elif op.removeprefix("r") in _BINARY:  # add, sub, rsub (arg - y), mul, div, rdiv
            sym, p = _BINARY[op.removeprefix("r")]
            other = "{" + arg + "}" if isinstance(arg, str) else _number(arg)
            operand = (other, 3 if other.startswith("-") else 4)
            left, right = (operand, (text, prec)) if op.startswith("r") else ((text, prec), operand)
            # left-associative: the left operand needs this precedence, the right one more
            text, prec = f"{_wrap(*left, p)} {sym} {_wrap(*right, p + 1)}", p
        elif arg is None:  # a function, as its own lowering writes it
            form = IN_PLACE[op] if fresh and op in IN_PLACE else _fixed(op, "the fused_elementwise step")
            text, prec = form.replace("{x0}", text), 4
        else:
            raise LoweringError(f"the torch backend cannot write the fused_elementwise step ({op!r}, {arg!r})")
        fresh = op == "neg" or op.removeprefix("r") in _BINARY  # their gradients do not read their results
    return _fn(Code(text))


def _wrap(text: str, prec: int, need: int) -> str:
    return text if prec >= need else f"({text})"


def _number(v: float) -> str:
    return repr(float(v)) if math.isfinite(v) else f'float("{v}")'


@lowering("constant")
def constant(node, xs):
    # A Python scalar: it broadcasts against a tensor of any dtype and device as torch's
    # scalar promotion rules say, and the elaborator only makes constants beside a tensor.
    a = node.attrs
    value = {"float": float, "int": int, "bool": bool}[a.dtype](a.value)
    return _fn(_pos("value", value))


# -- activations -----------------------------------------------------------------------------

@lowering("leaky_relu")
def leaky_relu(node, xs):
    return _fn(_call("F.leaky_relu", "{x0}", _pos("negative_slope", node.attrs.slope)))


@lowering("gelu")
def gelu(node, xs):
    return _fn(_call("F.gelu", "{x0}", _opt("approximate", node.attrs.approximate, "none")))


@lowering("clamp")
def clamp(node, xs):
    a = node.attrs
    return _fn(_call("torch.clamp", "{x0}", _opt("min", a.min, None), _opt("max", a.max, None)))


@lowering("softmax")
def softmax(node, xs):
    return _fn(_call("torch.softmax", "{x0}", _kw("dim", node.attrs.dim)))


@lowering("log_softmax")
def log_softmax(node, xs):
    return _fn(_call("torch.log_softmax", "{x0}", _kw("dim", node.attrs.dim)))


@lowering("randn_like")
def randn_like(node, xs):
    # torch's generator while training; the counter-based draw (as NumPy's) in eval mode
    expr = Code("torch.randn_like({x0}) if self.training else counter_randn({x0}, {})",
                [("seed", node.attrs.seed)])
    return _fn(expr, helpers={"counter_randn"})


# -- dense -----------------------------------------------------------------------------------

@lowering("linear")
def linear(node, xs):
    a = node.attrs
    return _activated(a, _layer(_call("nn.Linear", _pos("in_features", xs[0].shape[-1]),
                                      _pos("out_features", a.out), _opt("bias", a.bias, True))))


@lowering("embedding")
def embedding(node, xs):
    a = node.attrs
    return _layer(_call("nn.Embedding", _pos("num_embeddings", a.num), _pos("embedding_dim", a.dim)))


@lowering("unembed")
def unembed(node, xs):
    # The weights belong to the tied layer ({layer}); this node owns no module.
    return _fn(Code("F.linear({x0}, {layer}.weight)"))


@lowering("parameter")
def parameter(node, xs):
    # The node's module is the tensor itself: ``self.cls = nn.Parameter(...)`` is registered
    # under the param's own name, so the state_dict calls it ``cls`` (``encoder.pos``).
    a = node.attrs
    empty = _call("torch.empty", _holes("size", a.shape))
    return Lowered(Code("{m}"), _call("nn.Parameter", Code(a.init.torch(empty.template), empty.values)))


@lowering("index")
def index(node, xs):
    return _fn(Code("{x0}[" + index_code(node.attrs.items) + "]"))


# -- convolutions ----------------------------------------------------------------------------

def _conv(cls: str, node, xs) -> Lowered:
    a = node.attrs
    low = _layer(_call(cls, _pos("in_channels", xs[0].shape[1]), _pos("out_channels", a.out),
                       _kw("kernel_size", a.kernel), _kw("stride", a.stride), _kw("padding", a.padding),
                       _opt("dilation", a.dilation, 1), _opt("groups", a.groups, 1),
                       _opt("bias", a.bias, True)))
    return _activated(a, low)


@lowering("conv1d")
def conv1d(node, xs):
    return _conv("nn.Conv1d", node, xs)


@lowering("conv2d")
def conv2d(node, xs):
    return _conv("nn.Conv2d", node, xs)


@lowering("conv_transpose2d")
def conv_transpose2d(node, xs):
    a = node.attrs
    low = _layer(_call("nn.ConvTranspose2d", _pos("in_channels", xs[0].shape[1]), _pos("out_channels", a.out),
                       _kw("kernel_size", a.kernel), _kw("stride", a.stride), _kw("padding", a.padding),
                       _opt("output_padding", a.output_padding, 0), _opt("bias", a.bias, True)))
    return _activated(a, low)


# -- pooling and resampling ------------------------------------------------------------------

def _pool(fn: str, node) -> Lowered:
    a = node.attrs
    # stride None is torch's own default (the kernel size): leave it out.
    return _fn(_call(fn, "{x0}", _pos("kernel_size", a.kernel), _opt("stride", a.stride, None),
                     _opt("padding", a.padding, 0), _opt("ceil_mode", a.ceil_mode, False),
                     _opt("count_include_pad", getattr(a, "count_include_pad", True), True)))


@lowering("maxpool1d")
def maxpool1d(node, xs):
    return _pool("F.max_pool1d", node)


@lowering("maxpool2d")
def maxpool2d(node, xs):
    return _pool("F.max_pool2d", node)


@lowering("avgpool1d")
def avgpool1d(node, xs):
    return _pool("F.avg_pool1d", node)


@lowering("avgpool2d")
def avgpool2d(node, xs):
    return _pool("F.avg_pool2d", node)


@lowering("adaptive_avgpool2d")
def adaptive_avgpool2d(node, xs):
    return _fn(_call("F.adaptive_avg_pool2d", "{x0}", _pos("output_size", node.attrs.size)))


@lowering("global_avgpool")
def global_avgpool(node, xs):
    return _fn(Code("{x0}.mean(dim=(2, 3))" if xs[0].rank == 4 else "{x0}.mean(dim=2)"))


@lowering("upsample")
def upsample(node, xs):
    a = node.attrs
    return _fn(_call("F.interpolate", "{x0}", _kw("scale_factor", a.scale), _kw("mode", a.mode)))


# -- normalisation and dropout ---------------------------------------------------------------

@lowering("batchnorm")
def batchnorm(node, xs):
    a = node.attrs
    cls = "nn.BatchNorm2d" if xs[0].rank == 4 else "nn.BatchNorm1d"
    return _layer(_call(cls, _pos("num_features", xs[0].shape[1]), _opt("eps", a.eps, 1e-5),
                        _opt("momentum", a.momentum, 0.1)))


@lowering("layernorm")
def layernorm(node, xs):
    a = node.attrs
    trailing = tuple(xs[0].shape[-a.dims:])
    if not a.affine:  # no weights, so no module: the functional form
        return _fn(_call("F.layer_norm", "{x0}", _pos("normalized_shape", trailing), _opt("eps", a.eps, 1e-5)))
    shape = trailing[0] if a.dims == 1 else trailing
    return _layer(_call("nn.LayerNorm", _pos("normalized_shape", shape), _opt("eps", a.eps, 1e-5)))


@lowering("rmsnorm")
def rmsnorm(node, xs):
    return _layer(_call("nn.RMSNorm", _pos("normalized_shape", xs[0].shape[-1]), _kw("eps", node.attrs.eps)))


@lowering("groupnorm")
def groupnorm(node, xs):
    a = node.attrs
    return _layer(_call("nn.GroupNorm", _pos("num_groups", a.groups), _pos("num_channels", xs[0].shape[1]),
                        _opt("eps", a.eps, 1e-5)))


@lowering("dropout")
def dropout(node, xs):
    return _layer(_call("nn.Dropout", _pos("p", node.attrs.p)))


# -- shape -----------------------------------------------------------------------------------

@lowering("memory_format")
def memory_format(node, xs):
    # Channels-last for inference only: while autograd records, oneDNN's channels-last
    # weight gradient of a strided 1x1 convolution with few input channels crashes or
    # miscomputes (oneDNN issue 6035; torch 2.13 segfaults), so training keeps the standard
    # layout.
    if node.attrs.format == "channels_last":
        return _fn(Code("{x0} if torch.is_grad_enabled()" + _keep_layout(node.attrs)
                        + " else {x0}.contiguous(memory_format=torch.channels_last)"))
    return _fn(Code("{x0}.contiguous()"))


def _keep_layout(a) -> str:
    """The rest of the condition under which the value keeps its layout: use_channels_last's
    cost model, a batch below ``min_batch``, per range of thread counts where it differs by
    thread count (0: at any batch)."""
    if not a.threads:
        return f" or {{x0}}.shape[0] < {a.min_batch}" if a.min_batch > 1 else ""
    keep = ["True" if b == 0 else "False" if b == 1 else f"{{x0}}.shape[0] < {b}" for b in a.min_batch]
    n = "torch.get_num_threads()"
    if len(a.threads) == 2:
        t = a.threads[1]
        if all(b > 1 for b in a.min_batch):
            return f" or {{x0}}.shape[0] < ({a.min_batch[0]} if {n} < {t} else {a.min_batch[1]})"
        few, many = keep
        if few == "True":
            return f" or {n} < {t}" + ("" if many == "False" else f" or {many}")
        if many == "True":
            return f" or {n} >= {t}" + ("" if few == "False" else f" or {few}")
        return f" or ({n} < {t} and {few})" if many == "False" else f" or ({n} >= {t} and {many})"
    chain = " else ".join(f"{k} if {n} < {t}" for k, t in zip(keep, a.threads[1:])) + f" else {keep[-1]}"
    return f" or ({chain})"


@lowering("flatten")
def flatten(node, xs):
    a = node.attrs
    return _fn(_call("torch.flatten", "{x0}", _pos("start_dim", a.start), _opt("end_dim", a.end, -1)))


@lowering("reshape")
def reshape(node, xs):
    return _fn(_call("{x0}.reshape", _holes("size", node.attrs.shape)))


@lowering("transpose")
def transpose(node, xs):
    a = node.attrs
    return _fn(_call("{x0}.transpose", _pos("dim0", a.a), _pos("dim1", a.b)))


@lowering("permute")
def permute(node, xs):
    return _fn(_call("{x0}.permute", _holes("dim", node.attrs.dims)))


@lowering("concat")
def concat(node, xs):
    tensors = ", ".join(f"{{x{i}}}" for i in range(len(xs)))
    return _fn(_call("torch.cat", f"[{tensors}]", _kw("dim", node.attrs.dim)))


@lowering("split")
def split(node, xs):
    a = node.attrs
    if isinstance(a.sizes, int):
        sizes = _pos("split_size", a.sizes)
    else:  # one hole per size: each may be symbolic
        sizes = _holes("size", a.sizes)
        sizes = Code(f"[{sizes.template}]", sizes.values)
    return _fn(_call("torch.split", "{x0}", sizes, _kw("dim", a.dim)))


@lowering("pad")
def pad(node, xs):
    a = node.attrs
    widths = _holes("width", a.widths)  # one hole per width: each may be symbolic
    return _fn(_call("F.pad", "{x0}", Code(f"[{widths.template}]", widths.values), _opt("mode", a.mode, "constant"),
                     _opt("value", a.value, 0.0)))


@lowering("expand")
def expand(node, xs):
    return _fn(_call("{x0}.expand", _holes("size", node.attrs.sizes)))


@lowering("broadcast_to")
def broadcast_to(node, xs):
    sizes = _holes("size", node.attrs.sizes)
    return _fn(_call("torch.broadcast_to", "{x0}", Code(f"[{sizes.template}]", sizes.values)))


@lowering("repeat")
def repeat(node, xs):
    return _fn(_call("{x0}.repeat", _holes("times", node.attrs.times)))


def _reduce(method: str, node) -> Lowered:
    a = node.attrs
    return _fn(_call(f"{{x0}}.{method}", _kw("dim", a.dim), _opt("keepdim", a.keepdim, False)))


@lowering("mean")
def mean(node, xs):
    return _reduce("mean", node)


@lowering("sum")
def sum_(node, xs):
    return _reduce("sum", node)


# -- recurrent -------------------------------------------------------------------------------

def _recurrent(cls: str, node, xs, *extra: Code | None) -> Code:
    a = node.attrs
    return _call(cls, _pos("input_size", xs[0].shape[2]), _pos("hidden_size", a.hidden),
                 _opt("num_layers", a.layers, 1), *extra, "batch_first=True",
                 _opt("dropout", a.dropout, 0.0), _opt("bidirectional", a.bidirectional, False))


@lowering("rnn")
def rnn(node, xs):
    module = _recurrent("nn.RNN", node, xs, _opt("nonlinearity", node.attrs.nonlinearity, "tanh"))
    return _layer(module, *("{x0}", "{x1}")[:len(xs)], unpack="{0}, {1}")


@lowering("gru")
def gru(node, xs):
    return _layer(_recurrent("nn.GRU", node, xs), *("{x0}", "{x1}")[:len(xs)], unpack="{0}, {1}")


@lowering("lstm")
def lstm(node, xs):
    inputs = ("{x0}", "({x1}, {x2})") if len(xs) == 3 else ("{x0}",)
    return _layer(_recurrent("nn.LSTM", node, xs), *inputs, unpack="{0}, ({1}, {2})")


@lowering("scan")
def scan(node, xs):
    a = node.attrs
    # {cell}: the generated class of the cell; its forward(x, *fixed, *states) returns the new
    # state(s). The fixed inputs (memory=enc) are the node's inputs after the sequence.
    first_init = len(xs) - a.cell.states if a.cell.init else len(xs)
    fixed = [f"{{x{i}}}" for i in range(1, first_init)]
    states = [f"{{x{i}}}" for i in range(first_init, len(xs))]
    init = f"init=({', '.join(states)}{',' * (len(states) == 1)})" if a.cell.init else None
    expr = _call("scan", "{m}", "{x0}", _pos("hidden", a.hidden), _pos("states", a.cell.states), *fixed, init)
    return Lowered(expr, Code("{cell}()"), helpers=frozenset({"scan"}))


# -- attention -------------------------------------------------------------------------------

def _multi_head(node, xs, *inputs: str) -> Lowered:
    a = node.attrs
    rotary = getattr(a, "rotary", False)
    module = _call("Attention", _pos("dim", xs[0].shape[2]), _pos("heads", a.heads),
                   _opt("kv_heads", a.kv_heads, None), _opt("causal", a.causal, False),
                   _opt("dropout", a.dropout, 0.0), _opt("bias", a.bias, True), _opt("rotary", rotary, False),
                   _opt("base", a.base, 10000.0) if rotary else None)
    masks = [f"{name}={{x{len(inputs) + i}}}" for i, name in enumerate(a.masks)]
    # Attention's forward calls rotary and attention_mask: the file needs them too
    return _layer(module, *inputs, *masks, helpers={"Attention", "rotary", "attention_mask"})


@lowering("self_attention")
def self_attention(node, xs):
    return _multi_head(node, xs, "{x0}")


@lowering("cross_attention")
def cross_attention(node, xs):
    return _multi_head(node, xs, "{x0}", "{x1}")


@lowering("attention")
def attention(node, xs):
    a = node.attrs
    masks = dict(zip(a.masks or ("mask",) * (len(xs) - 3), (f"{{x{i}}}" for i in range(3, len(xs)))))
    grouped = min(xs[0].rank, xs[1].rank) >= 3 and xs[1].shape[-3] not in (1, xs[0].shape[-3])
    gqa = "enable_gqa=True" if grouped else None
    dropout = Code("dropout_p={} if self.training else 0.0", [("dropout_p", a.dropout)]) if a.dropout else None
    causal = a.causal
    if "padding" in masks or (causal and masks):  # combined into one attn_mask
        mask = _call("attention_mask", "{x0}", "{x1}", *(f"{k}={v}" for k, v in masks.items()),
                     "causal=True" if causal else None)
        mask, causal, helpers = Code(f"attn_mask={mask.template}", mask.values), False, {"attention_mask"}
    else:
        mask, helpers = (f"attn_mask={masks['mask']}" if masks else None), set()
    return _fn(_call("F.scaled_dot_product_attention", "{x0}", "{x1}", "{x2}", mask, dropout,
                     _opt("is_causal", causal, False), _opt("scale", a.scale, None), gqa), helpers=helpers)


@lowering("rotary")
def rotary(node, xs):
    return _fn(_call("rotary", "{x0}", _opt("base", node.attrs.base, 10000.0)), helpers={"rotary"})


@lowering("positional_encoding")
def positional_encoding(node, xs):
    return _fn(Code("positional_encoding({x0})"), helpers={"positional_encoding"})
