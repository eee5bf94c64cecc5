"""The CUDA check of the emitted modules (see prepare.py), run where the GPU is; needs only
torch. Every emitted module on CUDA against itself on the CPU (eval: float32 with TF32 off,
and float64; -O2 runs its channels-last inference path), a training step's gradients at
-O0 (float64, dropout off: the two devices draw different masks), and
``torch.compile(fullgraph=True)`` on CUDA for ResNet-18 and GPT-2 at -O2. One line a case,
then ``N passed, M failed``. ``DEV=cpu`` runs it on the CPU alone (a dry run of the script);
``ONLY=a,b`` runs the cases whose key holds one of them."""

import copy
import importlib.util
import json
import os
import sys
import time
import traceback
from pathlib import Path

import torch

HERE = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = False
dev = torch.device(os.environ.get("DEV", "cuda"))  # DEV=cpu: a dry run of this script
print(torch.__version__, torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu", flush=True)
ONLY = os.environ.get("ONLY")


def load(key, cls):
    spec = importlib.util.spec_from_file_location(key, HERE / f"{key}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, cls)


def first(y):
    return y[0] if isinstance(y, (tuple, list)) else y


def flat(y):
    return [t for t in (y if isinstance(y, (tuple, list)) else (y,))]


def rel(a, b):
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


ok = bad = 0
for c in json.loads((HERE / "cases.json").read_text()):
    key = c["key"]
    if ONLY and not any(o in key for o in ONLY.split(",")):
        continue
    try:
        t0 = time.time()
        data = torch.load(HERE / f"{key}.pt", weights_only=True)
        cls = load(key, c["cls"])
        worst = {}
        torch.manual_seed(0)
        base = cls()  # the module's own initialisation; CPU and CUDA run the same weights
        for dtype in (torch.float32, torch.float64):
            m = copy.deepcopy(base).to(dtype)
            m.eval()
            xs = [x.to(dtype) if x.is_floating_point() else x for x in data["inputs"]]
            with torch.no_grad():
                want = flat(m(*xs))
                mc = m.to(dev)
                got = flat(mc(*[x.to(dev) for x in xs]))
            assert all(g.device.type == dev.type for g in got)
            worst[str(dtype)[6:]] = max(rel(g, w) for g, w in zip(got, want))
        line = f"{key}: eval cuda/cpu rel f32 {worst['float32']:.1e} f64 {worst['float64']:.1e}"
        tol = {"float32": 1e-3, "float64": 1e-9}
        fail = [k for k, v in worst.items() if not v <= tol[k]]
        if c["opt"] == 0:  # a training step's gradients agree
            grads = []
            for d in ("cpu", dev.type):
                m = copy.deepcopy(base).double()
                m.train()
                m = m.to(d)
                xs = [(x.double() if x.is_floating_point() else x).to(d) for x in data["inputs"]]
                for s in m.modules():  # dropout off: the two devices draw different masks
                    if "Dropout" in type(s).__name__:
                        s.p = 0.0
                    elif isinstance(getattr(s, "dropout", None), float):  # nn.LSTM, Attention
                        s.dropout = 0.0
                loss = sum(y.double().square().mean() for y in flat(m(*xs)))
                loss.backward()
                grads.append({n: p.grad.detach().cpu() for n, p in m.named_parameters() if p.grad is not None})
            # each gradient's difference against the largest gradient of the model: a parameter
            # whose own gradient is ~1e-13 (a late layer's, here) differs at that noise level
            scale = max(g.abs().max().item() for g in grads[0].values())
            rels = sorted((((grads[1][n] - grads[0][n]).abs().max().item() / scale, n, grads[0][n].abs().max().item())
                           for n in grads[0]), reverse=True)
            g_rel = rels[0][0] if rels else 0.0
            if os.environ.get("WHY"):
                print("   worst grads:", [(f"{r:.1e}", n, f"{mx:.1e}") for r, n, mx in rels[:4]], flush=True)
            line += f"; train grads f64 rel {g_rel:.1e} ({len(grads[0])} params)"
            if not g_rel <= 1e-8:
                fail.append("grads")
        print(("FAIL " if fail else "ok   ") + line + f"  [{time.time() - t0:.1f}s]", flush=True)
        ok, bad = (ok, bad + 1) if fail else (ok + 1, bad)
    except Exception:  # noqa: BLE001 -- a case that fails in any way is reported, and the others still run
        bad += 1
        print(f"FAIL {key}: {traceback.format_exc(limit=3)}", flush=True)

for key in ("resnet18_ResNet18_O2", "gpt2_GPT2_O2") if not ONLY else ():
    c = next(c for c in json.loads((HERE / "cases.json").read_text()) if c["key"] == key)
    try:
        data = torch.load(HERE / f"{key}.pt", weights_only=True)
        torch.manual_seed(0)
        m = load(key, c["cls"])()
        m = m.eval().to(dev)
        xs = [x.to(dev) for x in data["inputs"]]
        t0 = time.time()
        cm = torch.compile(m, fullgraph=True)
        with torch.no_grad():
            r = rel(first(cm(*xs)), first(m(*xs)))
        print(("ok   " if r <= 1e-3 else "FAIL ") + f"{key}: torch.compile(fullgraph=True) on cuda rel {r:.1e} [{time.time() - t0:.0f}s]", flush=True)
        ok, bad = (ok + 1, bad) if r <= 1e-3 else (ok, bad + 1)
    except Exception:  # noqa: BLE001 -- a case that fails in any way is reported, and the others still run
        bad += 1
        print(f"FAIL {key} compile: {traceback.format_exc(limit=3)}", flush=True)
print(f"{ok} passed, {bad} failed")
