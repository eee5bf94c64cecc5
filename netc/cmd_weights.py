"""``netc weights SPEC --model M --from FILE -o OUT.safetensors|OUT.npz``: a checkpoint's
tensors as the model's netc-named weights (``Program.load_weights``), written as safetensors
or npz; ``--mapping-out`` saves the mapping used, ``--mapping`` loads by a saved one.

A checkpoint that does not fit is a diagnostic naming the file and each tensor, exit 1."""

from __future__ import annotations

import io
import os
import sys

import numpy as np

from netc.compiler.pipeline import UsageError
from netc.compiler.source import Diagnostic, SpecError
from netc.program import Program

OUTPUTS = (".safetensors", ".npz")


def run(args, prog: Program, write) -> int:
    """``write(prog, path, data)``: the CLI's whole-or-nothing writer of -o files."""
    from netc.runtime.weights import WeightError

    ext = os.path.splitext(args.output)[1].lower()
    if ext not in OUTPUTS:
        raise UsageError([Diagnostic(f"-o {args.output}: netc writes weights as .safetensors or .npz", None)])
    models = [m for m in prog.models if m not in prog.pairs]
    if args.model and len(args.model) > 1:
        raise UsageError([Diagnostic("netc weights loads one model; give --model once", None)])
    model = args.model[0] if args.model else models[0] if len(models) == 1 else None
    if model not in models:
        listed = ", ".join(models) or "none"
        what = f"--model {model}: no such model" if model else "the spec has several models: give --model"
        raise UsageError([Diagnostic(f"{what}; its models: {listed}", None)])
    try:
        weights = prog.load_weights(model, args.checkpoint, mapping=args.mapping, as_numpy=True)
    except WeightError as e:
        raise SpecError([Diagnostic(p, None) for p in e.problems]) from None
    write(prog, args.output, _encode(weights, ext))
    m = weights.mapping
    if args.mapping_out:
        try:
            m.save(args.mapping_out)
        except OSError as e:
            raise SpecError([Diagnostic(f"cannot write {args.mapping_out}: {e.strerror or e}", None)]) from None
    if args.show_mapping:
        print(m)
    changed = sum(e.conversion != "copy" for e in m.entries)
    print(f"{args.output}: {len(weights)} weights of {model} from {args.checkpoint} "
          f"({changed} converted, {len(m.tied)} tied, {len(m.ignored)} ignored)", file=sys.stderr)
    return 0


def _encode(weights: dict, ext: str) -> bytes:
    arrays = {k: np.ascontiguousarray(v) for k, v in weights.items()}
    if ext == ".npz":
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()
    try:
        from safetensors.numpy import save
    except ImportError:
        raise SpecError([Diagnostic("writing .safetensors needs the safetensors package", None,
                                    hint="pip install netc[torch], or write -o OUT.npz")]) from None
    return save(arrays)
