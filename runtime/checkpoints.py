"""Checkpoints in: a netc state dict, a foreign ``state_dict``, an ``nn.Module`` or a file
(``.pt``/``.pth`` read with ``torch.load(weights_only=True)``, ``.safetensors``, ``.npz``) ->
netc's weights of one model, by name (``runtime/name_mapping.py`` finds the names), with
the :class:`Mapping` used, which can be saved as JSON and given back to load by name.

    >>> import netc, torchvision
    >>> prog = netc.compile_file("examples/resnet18.net")
    >>> w = prog.load_weights("ResNet18", torchvision.models.resnet18())
    >>> w.mapping.entries[0].sources, w.mapping.entries[0].netc
    (('conv1.weight',), 'conv_bn.conv2d.weight')
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

import numpy as np
from netc.compiler.ir import Graph
from netc.runtime.name_mapping import Entry, map_by_structure
from netc.runtime.weights import (
    IGNORED,
    WeightError,
    check_weights,
    load_npz,
    numpy_to_state_dict,
    state_dict_to_numpy,
)

FORMAT = "netc-weight-mapping/1"
# buffers of foreign modules that are not weights: rotary tables, position ids, causal masks
NOT_WEIGHTS = ("inv_freq", "position_ids", "token_type_ids", "masked_bias", "cos_cached", "sin_cached",
               "_float_tensor")


@dataclass
class Mapping:
    """How a checkpoint's tensors became a model's weights: ``entries`` (netc name <- checkpoint
    names + conversion), the tensors ``ignored`` (buffers that are not weights) and ``tied``
    (name -> the tensor it shares storage with: GPT-2's ``lm_head.weight``)."""

    model: str
    entries: list[Entry]
    ignored: list[str] = field(default_factory=list)
    tied: dict[str, str] = field(default_factory=dict)
    transposed: bool = False

    def as_json(self) -> dict:
        return {"format": FORMAT, "model": self.model, "transposed": self.transposed,
                "entries": [e.as_json() for e in self.entries], "ignored": self.ignored, "tied": self.tied}

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.as_json(), f, indent=1)
            f.write("\n")

    @classmethod
    def from_json(cls, data: dict, where: str = "mapping") -> Mapping:
        try:
            if data.get("format") != FORMAT:
                raise ValueError(f"its format is {data.get('format')!r}, not {FORMAT!r}")
            entries = [Entry(e["netc"], tuple(e["from"]), e.get("conversion", "copy"),
                             tuple(e["rows"]) if e.get("rows") else None) for e in data["entries"]]
            for e in entries:
                if e.conversion not in CONVERSIONS or not e.sources or ("split" in e.conversion) != bool(e.rows):
                    raise ValueError(f"entry for `{e.netc}` has conversion {e.conversion!r} from {list(e.sources)}")
            return cls(str(data["model"]), entries, list(data.get("ignored", [])), dict(data.get("tied", {})),
                       bool(data.get("transposed", False)))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise WeightError([f"{where} is not a netc weight mapping: {e}"]) from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> Mapping:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise WeightError([f"{os.fspath(path)}: cannot read the mapping: {e}"]) from None
        return cls.from_json(data, os.fspath(path))

    def __str__(self) -> str:
        lines = [f"{' + '.join(e.sources)} -> {e.netc}" + ("" if e.conversion == "copy" else f"  ({e.conversion}"
                 + (f" rows {e.rows[0]}:{e.rows[1]}" if e.rows else "") + ")") for e in self.entries]
        lines += [f"{n}: ignored (not a weight)" for n in self.ignored]
        lines += [f"{n}: tied to {t}" for n, t in self.tied.items()]
        return "\n".join(lines)


CONVERSIONS = ("copy", "transpose", "concat", "transpose+concat", "split", "transpose+split")


class Weights(dict):
    """A netc-named state dict (``load_state_dict`` / ``to_numpy(weights=...)``) with the
    :class:`Mapping` that made it."""

    mapping: Mapping


def read_source(source, where: str = "state dict") -> tuple[dict, bool, str]:
    """(name -> tensor or array, whether the names are in the model's order, where it came from)."""
    if isinstance(source, (str, os.PathLike)):
        return _read_file(os.fspath(source))
    if hasattr(source, "state_dict") and callable(source.state_dict):
        return dict(source.state_dict()), True, f"{type(source).__name__} module"
    if isinstance(source, dict):
        return _unwrap(source), True, where
    raise WeightError([(f"cannot load weights from a {type(source).__name__}: pass a state dict, an nn.Module "
                       "or the path of a .pt, .pth, .bin, .safetensors or .npz file")])


def _read_file(path: str) -> tuple[dict, bool, str]:
    if not os.path.isfile(path):
        raise WeightError([f"{path}: no such file"])
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext in (".pt", ".pth", ".bin"):
            import torch

            return _unwrap(torch.load(path, map_location="cpu", weights_only=True), path), True, path
        if ext == ".safetensors":
            return _read_safetensors(path), False, path  # the format keeps names sorted, not in order
        if ext == ".npz":
            return load_npz(path), True, path
    except WeightError:
        raise
    except ImportError as e:
        raise WeightError([f"{path}: reading it needs {e.name} (pip install netc[torch])"]) from None
    except Exception as e:  # noqa: BLE001 -- a broken or hostile file: its reader's own error, named
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise WeightError([(f"{path}: holds a pickled {found.group(1)}, which torch.load(weights_only=True) "
                               "refuses to run; save the model's state_dict() instead")]) from None
        raise WeightError([f"{path}: not a readable {ext} checkpoint: {type(e).__name__}: {e}"]) from None
    raise WeightError([(f"{path}: unknown checkpoint format {ext or '(no extension)'}; "
                       "netc reads .pt, .pth, .bin, .safetensors and .npz")])


def _read_safetensors(path: str) -> dict:
    try:
        import torch  # noqa: F401 -- torch reads bfloat16, NumPy does not
        from safetensors.torch import load_file
    except ImportError:
        from safetensors.numpy import load_file
    return load_file(path)


def _unwrap(obj, where: str = "checkpoint") -> dict:
    """The state dict in a checkpoint: the object itself, or its ``state_dict``/``model`` entry."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                return dict(obj[key])
        bad = [k for k, v in obj.items() if not (hasattr(v, "shape") and hasattr(v, "dtype")) or not isinstance(k, str)]
        if not bad:
            return dict(obj)
        raise WeightError([f"{where}: entry {bad[0]!r} is not a tensor; a checkpoint is a dict of tensors"])
    raise WeightError([f"{where}: holds a {type(obj).__name__}, not a dict of tensors"])


def _split_off(tensors: dict) -> tuple[list[str], dict[str, str]]:
    """The tensors that are not weights (non-float buffers, rotary tables, ids), and the tied
    ones: a later name for the same storage (or, for 2-d and larger arrays, the same values)."""
    ignored, tied, seen = [], {}, {}
    for name, t in tensors.items():
        leaf = name.rsplit(".", 1)[-1]
        kind = str(t.dtype)
        if leaf in NOT_WEIGHTS or (leaf not in IGNORED and "float" not in kind):
            ignored.append(name)
            continue
        if len(t.shape) < 2:
            continue
        key = (t.data_ptr(), tuple(t.shape), kind) if hasattr(t, "data_ptr") else \
            (hash(np.ascontiguousarray(t).tobytes()), tuple(t.shape), kind)
        if key in seen:
            tied[name] = seen[key]
        else:
            seen[key] = name
    return ignored, tied


def load_checkpoint(graph: Graph, source, mapping=None, as_numpy: bool = False) -> Weights:
    """``graph``'s weights from ``source`` (see the module docstring), as torch tensors or,
    with ``as_numpy``, arrays; ``mapping`` (a :class:`Mapping`, its JSON dict or a path)
    loads by name instead of by structure. Raises ``WeightError``."""
    tensors, ordered, where = read_source(source)
    if mapping is not None:
        named = os.fspath(mapping) if isinstance(mapping, (str, os.PathLike)) else "the mapping"
        if isinstance(mapping, (str, os.PathLike)):
            mapping = Mapping.load(mapping)
        elif isinstance(mapping, dict):
            mapping = Mapping.from_json(mapping)
        if mapping.model != graph.name:
            raise WeightError([f"{named}: maps the weights of {mapping.model}, not of {graph.name}"])
        ignored, tied = _split_off(tensors)  # this file's own: it may keep another copy of a tied tensor
    else:
        mapping = _find_mapping(graph, tensors, ordered, where)
        ignored, tied = mapping.ignored, mapping.tied
    arrays = state_dict_to_numpy({k: v for k, v in tensors.items() if k not in ignored})
    out = _apply(mapping, arrays, where, tied)
    try:
        check_weights(graph, out)
    except WeightError as e:
        raise WeightError([f"{where}: {p}" for p in e.problems]) from None
    counters = {k: np.zeros((), np.int64) for k in graph.weights() if k.rsplit(".", 1)[-1] in IGNORED}
    out = {k: out[k] if k in out else counters[k] for k in graph.weights() if k in out or k in counters}
    result = Weights(out if as_numpy else numpy_to_state_dict(out))
    result.mapping = mapping
    return result


def _find_mapping(graph: Graph, tensors: dict, ordered: bool, where: str) -> Mapping:
    ignored, tied = _split_off(tensors)
    names = [n for n in tensors if n not in ignored]
    shapes = {n: tuple(int(d) for d in tensors[n].shape) for n in names}
    own = set(graph.weights())
    if {n for n in names if n.rsplit(".", 1)[-1] not in IGNORED} == {n for n in own if n.rsplit(".", 1)[-1] not in IGNORED}:
        return Mapping(graph.name, [Entry(n, (n,)) for n in names if n in own], ignored)  # netc's own names
    try:
        entries, transposed = map_by_structure(graph, {n: shapes[n] for n in names if n not in tied}, ordered)
        return Mapping(graph.name, entries, ignored, tied, transposed)
    except WeightError as first:
        if not tied:
            raise WeightError([f"{where}: {p}" for p in first.problems]) from None
        try:  # a model that keeps both copies (an untied head): every tensor placed
            entries, transposed = map_by_structure(graph, shapes, ordered)
            return Mapping(graph.name, entries, ignored, {}, transposed)
        except WeightError:
            raise WeightError([f"{where}: {p}" for p in first.problems]) from None


def _apply(mapping: Mapping, arrays: dict, where: str, tied: dict[str, str]) -> dict[str, np.ndarray]:
    """The mapping's entries computed from the checkpoint's arrays; every array used, ignored
    or tied to one used (``tied``: name -> the name it shares storage with), or a
    ``WeightError`` names the rest."""
    out, used, problems = {}, set(), []
    partner = mapping.tied | {b: a for a, b in mapping.tied.items()}  # a file may keep either copy
    for e in mapping.entries:
        sources = [s if s in arrays or partner.get(s) not in arrays else partner[s] for s in e.sources]
        missing = [s for s in sources if s not in arrays]
        if missing:
            problems += [f"{where}: has no tensor `{s}` (the mapping makes `{e.netc}` from it)" for s in missing]
            continue
        used.update(sources)
        parts = [arrays[s] for s in sources]
        try:
            if e.conversion.startswith("transpose"):
                parts = [p.T for p in parts]
            if e.conversion.endswith("concat"):
                value = np.concatenate(parts, axis=0)
            elif e.conversion.endswith("split"):
                value = parts[0][e.rows[0]:e.rows[1]]
            else:
                value = parts[0]
        except ValueError as err:
            problems.append(f"{where}: cannot make `{e.netc}` by {e.conversion} of {list(e.sources)}: {err}")
            continue
        out[e.netc] = np.ascontiguousarray(value)
    used |= {n for pair in tied.items() if used & set(pair) for n in pair}
    left = [n for n in arrays if n not in used and n.rsplit(".", 1)[-1] not in IGNORED]
    problems += [f"{where}: tensor `{n}` {list(arrays[n].shape)} is not in the mapping" for n in left]
    if problems:
        raise WeightError(problems)
    return out
