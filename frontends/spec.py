"""ONNX model -> `.net` text and weights named as the spec's torch module names them.

    imported = from_onnx(onnx.load("resnet18.onnx"), name="ResNet18")
    imported.text          # the spec
    imported.weights       # {"basic.0.conv2d.weight": array, ...}: load_state_dict / to_numpy
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np

from .chains import absorb_chains
from .errors import ImportRefused
from .graph import OnnxGraph, read
from .layers import Layer
from .recognise import recognise
from .shortcut import merge_shortcuts
from .structure import find_blocks, name_blocks
from .write import Region, block_text, camel, ident, wrap


@dataclass
class Imported:
    text: str  # the spec
    model: str  # the model's name in it
    weights: dict  # netc name -> array
    onnx_nodes: int  # how many nodes the ONNX graph had
    blocks: dict  # block name -> (uses, copies in all)

    def state_dict(self) -> dict:
        """The weights as torch tensors, for ``module.load_state_dict`` (strict)."""
        from netc.runtime.weights import numpy_to_state_dict

        return numpy_to_state_dict(self.weights)

    @property
    def lines(self) -> int:
        """Non-comment, non-blank lines of the spec."""
        return sum(1 for s in self.text.splitlines() if s.strip() and not s.strip().startswith("#"))


def from_onnx(model, name: str | None = None, dynamic: list[str] | None = None) -> Imported:
    g = read(model)
    layers = recognise(g)
    outputs = [o.name for o in g.outputs]
    items, blocks = find_blocks(layers, set(outputs), lambda v: _width(g, v))
    blocks = merge_shortcuts(blocks, items, lambda v: _width(g, v))
    blocks = absorb_chains(blocks, items, lambda v: _width(g, v))
    name_blocks(blocks)
    model_name = camel(ident(name or g.name, "model"))
    lines = [f"# imported by `netc import` from {g.node_count} ONNX nodes ({name or g.name})", ""]
    orders = {}
    for t in blocks:
        shape = g.shape(t.instances[0].input) or ()
        text, order = block_text(t, len(shape))
        orders[t.name] = order
        lines += text + [""]
    body, order = _model_body(g, items, orders, dynamic or [])
    lines += [_header(g, model_name, dynamic or [])]
    lines += [x for s in body for x in wrap(s, "    ")] + ["}"]
    text = "\n".join(lines) + "\n"
    weights = name_weights(text, model_name, order)
    uses = {t.name: (len(t.instances), sum(i.copies for i in t.instances)) for t in blocks}
    return Imported(text, model_name, weights, g.node_count, uses)


def _width(g: OnnxGraph, v: str):
    s = g.shape(v)
    if not s:
        return None
    d = s[-1] if len(s) == 3 else s[1] if len(s) >= 2 else None
    return d if isinstance(d, int) else None


def _dim_names(g: OnnxGraph, dynamic: list[str]) -> dict:
    """ONNX named dims -> spec symbols; ``dynamic`` names the leading dims of every input."""
    out = {}
    for i in g.inputs:
        for k, d in enumerate(i.shape):
            if isinstance(d, str):
                out[(i.name, k)] = ident(d, "D")
            elif k < len(dynamic):
                out[(i.name, k)] = dynamic[k]
    return out


def _type(value, names: dict) -> str:
    dims = ", ".join(names.get((value.name, k), str(d)) for k, d in enumerate(value.shape))
    return f"{'int' if value.dtype == 'int' else 'float'}[{dims}]"


def _header(g: OnnxGraph, model: str, dynamic: list[str]) -> str:
    names = _dim_names(g, dynamic)
    ins = ", ".join(f"{ident(i.name, 'input')}: {_type(i, names)}" for i in g.inputs)
    # outputs: their sizes follow from the inputs'; dims named in ONNX keep their names
    outs = [_out_type(o, g, names) for o in g.outputs]
    res = outs[0] if len(outs) == 1 else "(" + ", ".join(f"{ident(o.name)}: {t}" for o, t in zip(g.outputs, outs)) + ")"
    return f"model {model}({ins}) -> {res} {{"


def _out_type(o, g: OnnxGraph, names: dict) -> str:
    """An output's type; a leading dim equal to the first input's named dim there takes its
    name (``--dynamic N,T``: logits [1, 8, 100] -> [N, T, 100])."""
    first = g.inputs[0] if g.inputs else None
    dims = []
    for k, d in enumerate(o.shape):
        if isinstance(d, str):
            dims.append(ident(d, "D"))
        elif first is not None and (first.name, k) in names and k < len(first.shape) and first.shape[k] == d:
            dims.append(names[(first.name, k)])
        else:
            dims.append(str(d))
    return f"{'int' if o.dtype == 'int' else 'float'}[{', '.join(dims)}]"


def _model_body(g: OnnxGraph, items: list, orders: dict, dynamic: list[str]):
    layers: list[Layer] = []
    for it in items:
        if isinstance(it, Layer):
            layers.append(it)
            continue
        t, k = it
        inst = t.instances[k]
        prev = layers[-1] if layers else None
        if prev is not None and prev.op == "__block__" and prev.args[0] == t.name and \
                list(prev.args[1]) == list(t.args[k]) and prev.output == inst.input:
            # the same block with the same arguments right after: one stack (`* n`)
            prev.args = (t.name, prev.args[1], prev.args[2] + inst.copies)
            prev.output = inst.output
            prev.expanded += _expand(inst, orders[t.name])
            continue
        pseudo = Layer("__block__", [inst.input], inst.output, (t.name, t.args[k], inst.copies))
        pseudo.expanded = _expand(inst, orders[t.name])
        layers.append(pseudo)
    names = {i.name: ident(i.name, "input") for i in g.inputs}
    region = Region(layers, names, [o.name for o in g.outputs],
                    expand=lambda lay: getattr(lay, "expanded", [lay]), source_names=True)
    return region.statements(), region.order


def _expand(inst, order: list[int]) -> list[Layer]:
    """An instance's layers in the order of the block's text, copy by copy."""
    out = []
    for c in range(inst.copies):
        out += [lay for lay in (inst.layer(i, c) for i in order) if lay is not None]
    return out


def name_weights(text: str, model: str, order: list[Layer]) -> dict:
    """Compile the spec and give each layer's weights the name of the node netc made for it:
    netc creates its layers in the order of the text, which is ``order``."""
    from netc.program import compile_file

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "imported.net")
        with open(path, "w") as f:
            f.write(text)
        try:
            prog = compile_file(path, max_params=10**12)
        except Exception as e:  # noqa: BLE001 -- a spec the importer wrote must compile: say why not
            raise ImportRefused(f"the spec written for this model does not pass netc check (does the model "
                                f"declare output types its nodes do not compute?):\n{e}\n{text}") from None
    params = {lay.written: lay.weights[0] for lay in order if lay.op == "param"}
    weighted = [lay for lay in order if lay.weights and lay.op != "param"]
    out: dict = {}
    queue = list(weighted)
    for node in prog.graph(model).nodes():
        keys = node.param_names()
        if not keys or all(k in out for k in keys):
            continue
        if node.op == "parameter":
            out[keys[0]] = np.array(params[keys[0]], dtype=np.float32)
            continue
        if not queue:
            raise ImportRefused(f"internal error: netc made more weighted layers than were written ({node.id})")
        lay = queue.pop(0)
        arrays = list(lay.weights)
        for pname, name in zip(node.params, keys):
            p = node.params[pname]
            if pname == "num_batches_tracked":
                out[name] = np.zeros((), np.int64)
                continue
            a = arrays.pop(0) if arrays else None
            if node.op != lay.op or a is None:
                raise ImportRefused(f"internal error: netc's layer `{node.id}` ({node.op}) is not the imported "
                                    f"{lay.op} of ONNX node `{lay.source}`")
            if tuple(a.shape) != tuple(p.shape):
                raise ImportRefused(f"ONNX node `{lay.source}`: its weight has shape {list(a.shape)}, but its input "
                                    f"makes the {lay.op} need {list(p.shape)} (`{name}`): the model's shapes "
                                    "disagree")
            out[name] = np.array(a, dtype=np.float32)  # a writable copy (torch.from_numpy)
    if queue:
        raise ImportRefused(f"internal error: {len(queue)} imported layers found no netc layer")
    return out
