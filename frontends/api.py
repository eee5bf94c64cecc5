"""``netc.import_onnx`` and ``netc.import_torch``: an existing model becomes a spec.

    >>> imported = netc.import_onnx("resnet18.onnx", spec="resnet18.net", weights="resnet18.safetensors")
    >>> prog = netc.compile_file("resnet18.net")
    >>> net = prog.to_torch(imported.model)
    >>> net.load_state_dict(imported.state_dict())
"""

from __future__ import annotations

import io
import os
import warnings

from .errors import ImportRefused
from .spec import Imported, from_onnx


def import_onnx(model, spec: str | os.PathLike | None = None, weights: str | os.PathLike | None = None,
                name: str | None = None, dynamic: list[str] | None = None) -> Imported:
    """Read an ONNX model (a path, bytes or an ``onnx.ModelProto``) and return the
    :class:`Imported` spec: ``.text``, ``.model`` (its name), ``.weights`` (netc name -> array).
    With ``spec``/``weights`` paths, also write them (weights as ``.safetensors`` or ``.npz``,
    by the extension). ``dynamic``: names for the leading dims of the inputs (``["N"]``).
    Raises :class:`ImportRefused` naming the ONNX op and node it cannot express."""
    import onnx

    if weights is not None and not os.fspath(weights).endswith((".safetensors", ".npz")):
        raise ImportRefused(f"--weights {os.fspath(weights)}: write .safetensors or .npz")
    if isinstance(model, (str, os.PathLike)):
        if name is None:
            name = os.path.splitext(os.path.basename(os.fspath(model)))[0]
        try:
            model = onnx.load(os.fspath(model))
        except Exception as e:  # noqa: BLE001 -- onnx raises DecodeError, OSError, ...
            raise ImportRefused(f"{os.fspath(model)} is not a readable ONNX model: {e}") from None
    elif isinstance(model, bytes):
        try:
            model = onnx.load_from_string(model)
        except Exception as e:  # noqa: BLE001 -- onnx raises DecodeError, ...
            raise ImportRefused(f"not a readable ONNX model: {e}") from None
    imported = from_onnx(model, name, dynamic)
    if weights is not None:
        save_weights(imported.weights, weights)
    if spec is not None:  # whole or not at all
        from netc.backends.emit_kit import write_atomic

        write_atomic(os.fspath(spec), imported.text)
    return imported


def save_weights(weights: dict, path) -> None:
    path = os.fspath(path)
    if path.endswith(".npz"):
        import numpy as np

        np.savez(path, **weights)
        return
    from safetensors.numpy import save_file

    save_file(weights, path)


def import_torch(module, example_inputs, spec=None, weights=None, name: str | None = None,
                 dynamic: list[str] | None = None) -> Imported:
    """Export ``module`` (an ``nn.Module``, in eval mode) on ``example_inputs`` (a tensor or a
    tuple of them) with ``torch.onnx.export`` (the TorchScript tracer, batch norms kept as
    written) and import the ONNX model as :func:`import_onnx` does."""
    import torch

    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    buf = io.BytesIO()
    module = module.eval()
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # nn.MultiheadAttention as its ops, which import reads
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (the TorchScript exporter's deprecation notices)
            torch.onnx.export(module, tuple(example_inputs), buf, dynamo=False,
                              training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    return import_onnx(buf.getvalue(), spec, weights, name or type(module).__name__, dynamic)
