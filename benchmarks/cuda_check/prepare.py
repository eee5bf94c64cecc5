"""Prepare the CUDA check of the emitted modules: for every model of `examples/`, its emitted
PyTorch source at -O0 and -O2 and seeded random inputs, in one folder that `run.py` reads on
a machine with a GPU (which needs only torch there, not netc).

    .venv/bin/python benchmarks/cuda_check/prepare.py cuda_check      # here: writes cuda_check/
    python3 benchmarks/cuda_check/run.py cuda_check                   # there: prints one line a case

The folder holds no weights: `run.py` builds each module with its own initialisation (seeded)
and moves the same module between the CPU and the GPU.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from netc.backends.torch.source import emit_torch
from netc.runtime.inputs import random_inputs

import netc

ROOT = Path(__file__).resolve().parents[2]


def main(out: Path) -> None:
    out.mkdir(exist_ok=True)
    cases = []
    for spec in sorted((ROOT / "examples").glob("*.net")):
        prog = netc.compile_file(spec)
        for model in prog.models:
            if model in prog.pairs:
                continue
            xs = random_inputs(prog.graph(model), {"T": 16}, seed=1)
            for opt in (0, 2):
                key = f"{spec.stem}_{model}_O{opt}"
                emitted = emit_torch((prog.optimized(opt) if opt else prog)._c, [model])
                (out / f"{key}.py").write_text(emitted.text)
                torch.save({"inputs": [torch.from_numpy(np.asarray(x)) for x in xs.values()]}, out / f"{key}.pt")
                cases.append({"key": key, "cls": emitted.classes[model], "opt": opt})
    (out / "cases.json").write_text(json.dumps(cases, indent=1))
    shutil.copy(Path(__file__).with_name("run.py"), out / "run.py")
    print(f"{len(cases)} cases in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "cuda_check"))
