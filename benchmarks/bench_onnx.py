"""ONNX Runtime on netc's ONNX export against ONNX Runtime on ``torch.onnx.export`` of the
hand-written reference (``tests/references.py``), and both against eager torch, in one process.

A second session of the exported reference ("export again") runs as a control: its ratio to
the first is the noise floor of the machine.

Cases: ResNet-18 (examples/resnet18.net, 224x224) at batch 1 and 8; GPT-2 small
(examples/gpt2.net, batch 1, T=128; ``--gpt2-layers`` cuts the depth on a slow machine).
netc's model is exported at ``-O2``; the reference with ``torch.onnx.export(dynamo=False)``
(the TorchScript exporter: the dynamo one needs onnxscript), by default with the same dynamic
axes as netc's (N; N and T for GPT-2); ``--static`` compares static shapes on both sides. Timing values do not depend on
weight values, so each model keeps its own seeded weights. Rounds are interleaved: every
contender runs once per round, in an order that rotates; the figure is the median.

    python benchmarks/bench_onnx.py --reps 21 --threads 1
    python benchmarks/bench_onnx.py --reps 21 --threads 1 --static
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

import netc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import references


def session(model_bytes: bytes, threads: int, fixed: dict | None = None,
            save: str | None = None) -> ort.InferenceSession:
    """A session; ``fixed`` pins named dynamic dims (ONNX Runtime's free dimension overrides);
    ``save``: where to write the graph as ONNX Runtime optimised it."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = threads
    if save:
        opts.optimized_model_filepath = save
    for name, value in (fixed or {}).items():
        opts.add_free_dimension_override_by_name(name, value)
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def torch_export(module, x: torch.Tensor, dynamic: dict | None = None) -> bytes:
    """The TorchScript exporter's model; ``dynamic``: the input's dynamic axes ({0: "N"})."""
    f = io.BytesIO()
    torch.onnx.export(module, (x,), f, dynamo=False, opset_version=17, input_names=["x"],
                      dynamic_axes={"x": dynamic} if dynamic else None)
    return f.getvalue()


def cases(args):
    resnet = netc.compile_file(ROOT / "examples/resnet18.net")
    ref = references.ResNet18().eval()
    for batch in (1, 8):
        x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
        yield f"resnet18 batch {batch}", resnet, "ResNet18", ref, x, {0: "N"}
    gpt2 = netc.compile_file(ROOT / "examples/gpt2.net", defines={"layers": str(args.gpt2_layers)})
    ref = references.GPT2(50257, 1024, args.gpt2_layers, 12, 768, 0.1).eval()
    yield f"gpt2 ({args.gpt2_layers} layers) T=128", gpt2, "GPT2", ref, np.random.default_rng(0).integers(
        0, 50257, (1, 128)), {0: "N", 1: "T"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--gpt2-layers", type=int, default=12)
    p.add_argument("--static", action="store_true",
                   help="static shapes on both sides: the reference exported at the input's shape, netc's "
                        "named dims pinned by free dimension overrides (default: both dynamic in N and T)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} thread(s), "
          f"median of {args.reps} interleaved rounds (ms), {'static' if args.static else 'dynamic'} shapes; "
          f"load average {os.getloadavg()[0]:.1f}")
    for case in cases(args):
        bench(*case, args)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


def bench(name: str, prog, model: str, ref, x: np.ndarray, dynamic: dict, args) -> None:
    """Time the four contenders on one case, interleaved; print the medians."""
    torch.manual_seed(0)
    eager = prog.to_torch(model, opt=2).eval()
    fixed = {d: x.shape[axis] for axis, d in dynamic.items()} if args.static else None
    with tempfile.TemporaryDirectory() as tmp:
        netc_ort = session(prog.to_onnx(model, opt=2).SerializeToString(), args.threads, fixed, f"{tmp}/netc.onnx")
        exported = torch_export(ref, torch.from_numpy(x), None if args.static else dynamic)
        ref_ort = session(exported, args.threads, save=f"{tmp}/ref.onnx")
        ops = {k: collections.Counter(n.op_type for n in onnx.load(f"{tmp}/{k}.onnx").graph.node)
               for k in ("netc", "ref")}
    print(f"{name}: ONNX Runtime's optimised graphs, op counts where they differ (netc, export): "
          + (", ".join(f"{op} {ops['netc'][op]}/{ops['ref'][op]}" for op in sorted(ops["netc"] | ops["ref"])
                       if ops["netc"][op] != ops["ref"][op]) or "none"))
    control = session(exported, args.threads)  # a second session of the same model: the noise floor
    ref_in, netc_in = ref_ort.get_inputs()[0].name, netc_ort.get_inputs()[0].name
    tx = torch.from_numpy(x)
    run = {"netc onnx": lambda: netc_ort.run(None, {netc_in: x}),
           "torch.onnx.export": lambda: ref_ort.run(None, {ref_in: x}),
           "export again": lambda: control.run(None, {ref_in: x}),
           "eager netc -O2": lambda: eager(tx),
           "eager reference": lambda: ref(tx)}
    times = {k: [] for k in run}
    with torch.no_grad():
        for fn in run.values():
            fn()
        for r in range(args.reps):
            keys = list(run)
            for k in keys[r % len(keys):] + keys[:r % len(keys)]:
                t = time.perf_counter()
                run[k]()
                times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"{name:28s} " + "  ".join(f"{k} {v:8.1f}" for k, v in med.items())
          + f"  netc/export {med['netc onnx'] / med['torch.onnx.export']:.2f}"
          + f"  (export again/export {med['export again'] / med['torch.onnx.export']:.2f})"
          + f"  netc/eager {med['netc onnx'] / med['eager reference']:.2f}"
          + f"  export/eager {med['torch.onnx.export'] / med['eager reference']:.2f}")


if __name__ == "__main__":
    main()
