"""``netc import``: an ONNX model, or a PyTorch module traced to ONNX, becomes a spec.

    netc import resnet18.onnx -o resnet18.net --weights resnet18.safetensors
    netc import --torch torchvision.models:resnet18 --input-shape 1,3,224,224 -o resnet18.net
"""

from __future__ import annotations

import importlib
import os
import sys


def add_arguments(c) -> None:
    c.add_argument("model", nargs="?", help="the .onnx file (or give --torch)")
    c.add_argument("-o", "--output", required=True, metavar="SPEC.net", help="where to write the spec")
    c.add_argument("--weights", metavar="FILE", help="also write the weights, by the spec's names "
                                                     "(.safetensors or .npz)")
    c.add_argument("--torch", metavar="PACKAGE.MODULE:FACTORY",
                   help="a callable returning an nn.Module, exported with torch.onnx.export")
    c.add_argument("--input-shape", action="append", default=[], metavar="D,D,...",
                   help="with --torch: the shape of an example input (repeat for several; float32)")
    c.add_argument("--name", help="the model's name in the spec (default: from the file or factory)")
    c.add_argument("--dynamic", metavar="N,T", help="names for the inputs' leading dims (symbolic sizes)")


def _fail(where: str, message: str, code: int = 1) -> int:
    print(f"{where}: error: {message}", file=sys.stderr)
    return code


def cmd_import(args) -> int:
    from netc.frontends.api import import_onnx, import_torch
    from netc.frontends.errors import ImportRefused

    dynamic = [d.strip() for d in args.dynamic.split(",")] if args.dynamic else None
    if dynamic and not all(d.isidentifier() for d in dynamic):
        return _fail("netc", f"--dynamic needs names like N,T; got {args.dynamic!r}", 2)
    if args.weights and not args.weights.endswith((".safetensors", ".npz")):
        return _fail("netc", f"--weights {args.weights}: write .safetensors or .npz", 2)
    if (args.model is None) == (args.torch is None):
        return _fail("netc", "give either an .onnx file or --torch PACKAGE.MODULE:FACTORY", 2)
    for path in (args.output, args.weights):
        if path and args.model and os.path.exists(path) and os.path.samefile(path, args.model):
            return _fail("netc", f"will not overwrite the model {args.model}", 2)
    try:
        if args.torch:
            module, inputs, name = _torch_model(args)
            import_torch(module, inputs, args.output, args.weights, args.name or name, dynamic)
        else:
            if not os.path.isfile(args.model):
                return _fail("netc", f"{args.model}: no such file", 2)
            import_onnx(args.model, args.output, args.weights, args.name, dynamic)
    except ImportRefused as e:
        return _fail(args.model or args.torch, e.message)
    except _Usage as e:
        return _fail("netc", str(e), 2)
    except OSError as e:
        return _fail("netc", f"cannot write: {e}", 2)
    print(f"wrote {args.output}" + (f" and {args.weights}" if args.weights else ""))
    return 0


class _Usage(Exception):
    pass


def _torch_model(args):
    target, _, attr = args.torch.partition(":")
    if not target or not attr:
        raise _Usage(f"--torch needs PACKAGE.MODULE:FACTORY; got {args.torch!r}")
    try:
        factory = getattr(importlib.import_module(target), attr)
    except (ImportError, AttributeError) as e:
        raise _Usage(f"--torch {args.torch}: {e}") from None
    if not args.input_shape:
        raise _Usage("--torch needs --input-shape D,D,... (e.g. 1,3,224,224)")
    import torch

    shapes = []
    for text in args.input_shape:
        try:
            shapes.append([int(d) for d in text.split(",")])
        except ValueError:
            raise _Usage(f"--input-shape needs whole numbers like 1,3,224,224; got {text!r}") from None
    torch.manual_seed(0)
    module = factory()
    if not isinstance(module, torch.nn.Module):
        raise _Usage(f"--torch {args.torch} returned {type(module).__name__}, not an nn.Module")
    return module, tuple(torch.randn(*s) for s in shapes), attr
