"""Weights between backends, by scope name: a torch ``state_dict`` <-> a dict of NumPy
arrays <-> an ``.npz`` file, and the check that a set of weights fits a model.

Names are the graph's (``graph.weights()``), which are the torch module's ``state_dict``
names: ``conv2d.weight``, ``layer1.0.conv_bn.batchnorm.running_mean``. ``num_batches_tracked``
(batchnorm's step counter) is accepted and ignored: inference does not read it.

    >>> import numpy as np
    >>> w = {"linear.weight": np.zeros((2, 3), np.float32)}
    >>> save_npz(w, "/tmp/w.npz"); sorted(load_npz("/tmp/w.npz"))
    ['linear.weight']
"""

from __future__ import annotations

import os
import zipfile

import numpy as np
from netc.compiler.ir import Graph

IGNORED = ("num_batches_tracked",)


class WeightError(ValueError):
    """Weights that do not fit a model: each problem names the parameter."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _ignored(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in IGNORED


def _shape(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def state_dict_to_numpy(state_dict) -> dict[str, np.ndarray]:
    """A torch ``state_dict`` (or any mapping of tensors / arrays) as NumPy arrays, same names."""
    out = {}
    for name, value in state_dict.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu()
            if str(value.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
                value = value.float()
            value = value.numpy()
        out[name] = np.asarray(value)
    return out


def numpy_to_state_dict(weights, graph: Graph | None = None) -> dict:
    """NumPy arrays as torch tensors, for ``module.load_state_dict``. With ``graph``, a missing
    ``num_batches_tracked`` buffer is filled in with 0 so that strict loading works."""
    import torch

    out = {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in weights.items()}
    if graph is not None:
        for name in graph.weights():
            if _ignored(name) and name not in out:
                out[name] = torch.tensor(0, dtype=torch.int64)
    return out


def save_npz(weights, path: str | os.PathLike) -> None:
    """Write name -> array to an uncompressed ``.npz`` (state_dict tensors are converted)."""
    np.savez(path, **state_dict_to_numpy(weights))


def load_npz(path: str | os.PathLike, expected: dict | None = None) -> dict[str, np.ndarray]:
    """The name -> array dict of an ``.npz`` written by :func:`save_npz` (or ``np.savez``).

    With ``expected`` (name -> shape), each member's header (shape, dtype) is read first and
    checked, and nothing is decompressed unless every member is an expected weight of its
    shape with a float dtype: a small file claiming gigabytes, or holding objects, is a
    :class:`WeightError` naming the members, before any array is read."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = [i for i in zf.infolist() if i.filename.endswith(".npy")]
            problems = []
            for info in members:
                problems += _member_problems(zf, info, expected)
            if problems:
                raise WeightError(problems)
            return {i.filename[:-4]: np.lib.format.read_array(zf.open(i), allow_pickle=False) for i in members}
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise WeightError([f"{os.fspath(path)} is not a readable .npz file: {e}"]) from None


def _member_problems(zf: zipfile.ZipFile, info: zipfile.ZipInfo, expected: dict | None) -> list[str]:
    name = info.filename[:-4]
    if expected is not None and name not in expected and not _ignored(name):
        return [f"unexpected weight `{name}`"]
    with zf.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
        except ValueError as e:
            return [f"weight `{name}` has a broken .npy header: {e}"]
    out = []
    if not _ignored(name) and dtype.kind != "f":
        out.append(f"weight `{name}` has dtype {dtype}; weights are float16, float32 or float64")
    elif dtype.hasobject:
        out.append(f"weight `{name}` holds Python objects")
    want = None if expected is None else expected.get(name)
    if want is not None and tuple(shape) != tuple(want):
        out.append(f"weight `{name}` has shape {_shape(shape)}; the model needs {_shape(want)}")
    data = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if not out and info.file_size > data + 4096:  # the header is at most a few hundred bytes
        out.append(f"weight `{name}` is {info.file_size} bytes unpacked; its header says {data}")
    return out


def as_float(name: str, a: np.ndarray) -> np.ndarray:
    """A weight as float32 or float64: float16 (and torch's bfloat16) become float32."""
    return a.astype(np.float32) if a.dtype.kind == "f" and a.itemsize < 4 else a


def check_weights(graph: Graph, weights) -> None:
    """Raise :class:`WeightError` unless ``weights`` has exactly the model's weights, each of
    the shape the model needs (``num_batches_tracked`` may be there or not)."""
    want = {k: p for k, p in graph.weights().items() if not _ignored(k)}
    problems = []
    for name, p in want.items():
        if name not in weights:
            problems.append(f"missing weight `{name}` {_shape(p.shape)}")
            continue
        got = tuple(np.shape(weights[name]))
        dtype = np.asarray(weights[name]).dtype
        if dtype.kind != "f":
            problems.append(f"weight `{name}` has dtype {dtype}; weights are float16, float32 or float64")
        elif got != tuple(p.shape):
            problems.append(f"weight `{name}` has shape {_shape(got)}; the model needs {_shape(p.shape)}")
    for name in weights:
        if name not in want and not (_ignored(name) and name in graph.weights()):
            problems.append(f"unexpected weight `{name}`")
    if problems:
        raise WeightError(problems)


def init_weights(graph: Graph, seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    """Deterministic weights of the model's shapes: matrices and kernels uniform in
    ±1/sqrt(fan_in) (torch's default range), biases likewise by their layer's fan-in, norm
    scales and running variances 1, shifts and running means 0."""
    rng = np.random.default_rng(seed)
    fan_in: dict[str, int] = {}
    out = {}
    for name, p in graph.weights().items():
        if _ignored(name):
            continue
        scope, _, leaf = name.rpartition(".")
        if len(p.shape) >= 2:
            fan_in[scope] = int(np.prod(p.shape[1:]))
            bound = 1 / np.sqrt(fan_in[scope])
            out[name] = rng.uniform(-bound, bound, p.shape).astype(dtype)
        elif leaf in ("running_var",) or (leaf == "weight" and scope not in fan_in):
            out[name] = np.ones(p.shape, dtype)
        elif leaf == "running_mean" or scope not in fan_in:
            out[name] = np.zeros(p.shape, dtype)
        else:
            bound = 1 / np.sqrt(fan_in[scope])
            out[name] = rng.uniform(-bound, bound, p.shape).astype(dtype)
    return out
