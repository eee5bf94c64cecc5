"""Emitted PyTorch modules against hand-written PyTorch with the same math, in one process.

For each case the emitted module and the hand-written reference get the same weights (the
script checks that their outputs agree before timing), then run interleaved: warm-up calls
first, then ``--reps`` rounds in which every contender runs once, in an order that rotates
from round to round, so drift in clock speed or cache state falls on all of them alike.
Eval mode, ``torch.no_grad()``, ``torch.set_num_threads(--threads)``; the figure is the
median over rounds, and the ratio is emitted / hand-written.

On a shared machine other processes (or other VMs: steal time) take CPU time in bursts. Each
call reads /proc/stat before and after; a round is *quiet* when, in every call of it, the rest
of the machine used at most 5% of the CPUs, and the figures are over the quiet rounds when
there are at least 5 (the report says which). ``--clock cpu`` times this process's CPU time
instead of wall time, which is far less sensitive to a busy machine.

    python benchmarks/bench_torch.py                    # all cases
    python benchmarks/bench_torch.py --cases encoder6 --reps 10

Cases: ``resnet18`` (examples/resnet18.net, batch 8 at 224x224, against a torchvision-style
ResNet-18 written out below), ``encoder6`` (benchmarks/specs/encoder6.net, batch 8, T=256,
d=512, against nn.TransformerEncoder; that reference takes PyTorch's fused inference fast
path in eval mode, so it is also timed with the fast path off), ``lstm_lm``
(examples/lstm_lm.net at its default size, batch 8, T=64, against Embedding -> LSTM ->
Linear). The emitted code is ``-O0`` (no passes: the same ops as the spec) unless
``--opt`` says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

try:
    import resource
except ImportError:  # not on Windows: page faults are then not counted
    resource = None

import netc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# -- hand-written references -------------------------------------------------------------------


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock."""

    def __init__(self, cin: int, out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out, out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride != 1 or cin != out:
            self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class ResNet18(nn.Module):
    """torchvision.models.resnet18(num_classes=1000), written out."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class LSTMLanguageModel(nn.Module):
    """PyTorch's word_language_model RNNModel (LSTM, untied), batch first."""

    def __init__(self, vocab: int = 10000, dim: int = 650, layers: int = 2, p: float = 0.5):
        super().__init__()
        self.drop = nn.Dropout(p)
        self.encoder = nn.Embedding(vocab, dim)
        self.rnn = nn.LSTM(dim, dim, layers, dropout=p, batch_first=True)
        self.decoder = nn.Linear(dim, vocab)

    def forward(self, tokens):
        out, _ = self.rnn(self.drop(self.encoder(tokens)))
        return self.decoder(self.drop(out))


def encoder6() -> nn.Module:
    layer = nn.TransformerEncoderLayer(512, 8, 2048, batch_first=True)
    return nn.TransformerEncoder(layer, 6, norm=nn.LayerNorm(512), enable_nested_tensor=False)


# -- weights: the emitted module's state_dict in the reference's names --------------------------


def copy_in_order(src: nn.Module, dst: nn.Module) -> None:
    """Copy tensors position by position (the two modules declare them in the same order)."""
    s, d = src.state_dict(), dst.state_dict()
    assert len(s) == len(d), (len(s), len(d))
    for (ks, vs), (kd, vd) in zip(s.items(), d.items()):
        assert vs.shape == vd.shape, (ks, kd, vs.shape, vd.shape)
    dst.load_state_dict(dict(zip(d, s.values())))


ENCODER_NAMES = [(".self_attention.", ".self_attn."), (".layernorm_1.", ".norm2."), (".layernorm.", ".norm1."),
                 (".linear_1.", ".linear2."), (".linear.", ".linear1.")]


def copy_encoder(src: nn.Module, dst: nn.Module) -> None:
    out = {}
    for k, v in src.state_dict().items():
        if k.startswith("encoder_layer."):
            k = "layers." + k[len("encoder_layer."):]
            for a, b in ENCODER_NAMES:
                if a in k:
                    k = k.replace(a, b)
                    break
        else:
            k = k.replace("layernorm.", "norm.")
        out[k] = v
    dst.load_state_dict(out)


# -- cases ------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    spec: str
    model: str
    reference: Callable[[], nn.Module]
    copy: Callable[[nn.Module, nn.Module], None]
    inputs: Callable[[], tuple]
    what: str


def _tokens(vocab: int, n: int, t: int):
    return lambda: (torch.randint(0, vocab, (n, t), generator=torch.Generator().manual_seed(0)),)


def _floats(*shape: int):
    return lambda: (torch.randn(*shape, generator=torch.Generator().manual_seed(0)),)


CASES = [
    Case("resnet18", "examples/resnet18.net", "ResNet18", ResNet18, copy_in_order,
         _floats(8, 3, 224, 224), "batch 8, 3x224x224"),
    Case("encoder6", "benchmarks/specs/encoder6.net", "Encoder6", encoder6, copy_encoder,
         _floats(8, 256, 512), "batch 8, T=256, d=512, 8 heads, ff 2048"),
    Case("lstm_lm", "examples/lstm_lm.net", "LSTMLanguageModel", LSTMLanguageModel, copy_in_order,
         _tokens(10000, 8, 64), "batch 8, T=64, vocab 10000, 2x650 LSTM"),
]


@contextlib.contextmanager
def mha_fastpath(enabled: bool):
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(enabled)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def contenders(case: Case, opt: int = 0) -> dict[str, Callable[[], torch.Tensor]]:
    """name -> a zero-argument call; the first is the emitted module (at ``-O{opt}``; the
    reference gets the ``-O0`` module's weights, the optimised module their converted form)."""
    torch.manual_seed(0)
    prog = netc.compile_file(os.path.join(ROOT, case.spec))
    emitted = prog.to_torch(case.model, opt=0).eval()
    reference = case.reference().eval()
    case.copy(emitted, reference)
    if opt:
        weights = prog.convert_weights(case.model, emitted.state_dict(), opt)
        emitted = prog.to_torch(case.model, opt=opt).eval()
        emitted.load_state_dict(weights)
    xs = case.inputs()
    calls = {"emitted": lambda: emitted(*xs), "hand-written": lambda: reference(*xs)}
    if case.name == "encoder6":
        def slow_reference():
            with mha_fastpath(False):
                return reference(*xs)

        calls["hand-written, fast path off"] = slow_reference
    return calls


def check_same(calls: dict) -> float:
    outs = [f() for f in calls.values()]
    return max((o - outs[0]).abs().max().item() for o in outs[1:])


def cpu_ticks() -> tuple[int, int]:
    """(ticks the CPUs spent on anything but this process, all ticks) since boot, from /proc
    (Linux; steal time, taken by other VMs, counts as busy). (0, 0) elsewhere."""
    try:
        with open("/proc/stat") as f:
            t = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0
    return sum(t) - t[3] - t[4] - int(own[11]) - int(own[12]), sum(t)  # own: utime, stime


QUIET = 0.05


def minor_faults() -> int:
    """Minor page faults of this process so far: each is a page of fresh memory from the OS."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def bench(calls: dict, warmup: int, reps: int, faults: dict[str, list[int]] | None = None,
          clock: Callable[[], float] = time.perf_counter) -> tuple[dict[str, list[float]], list[bool]]:
    """Seconds per call, one per round (every round runs each contender once, in an order
    that rotates), and per round whether it was quiet: no call in it saw other processes
    (or other VMs) take more than QUIET of the machine's CPU time. ``faults``, if given,
    gets each call's minor page faults; ``clock`` is wall time unless told otherwise."""
    names = list(calls)
    for _ in range(warmup):
        for n in names:
            calls[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    faults = {} if faults is None else faults
    quiet = []
    for r in range(reps):
        k = r % len(names)
        calm = True
        for n in names[k:] + names[:k]:
            (f0, a0), p0, t0 = cpu_ticks(), minor_faults(), clock()
            calls[n]()
            t1, p1, (f1, a1) = clock(), minor_faults(), cpu_ticks()
            times[n].append(t1 - t0)
            faults.setdefault(n, []).append(p1 - p0)
            calm &= f1 - f0 <= QUIET * max(a1 - a0, 1)
        quiet.append(calm)
    return times, quiet


def report(times: dict[str, list[float]], quiet: list[bool], faults: dict[str, list[int]]) -> None:
    """Per contender: median, quartiles and minimum in ms and the median page faults, over the
    quiet rounds when there are at least 5, else over all. emitted / hand-written two ways:
    the ratio of medians and the median of the per-round ratios (a round's calls are adjacent
    in time)."""
    keep = [i for i, q in enumerate(quiet) if q]
    if len(keep) < 5:
        keep = list(range(len(quiet)))
        print(f"  machine busy: {sum(quiet)} quiet rounds of {len(quiet)}; figures over all rounds")
    else:
        print(f"  {len(keep)} quiet rounds of {len(quiet)} (others used <= {QUIET:.0%} of the CPUs)")
    times = {n: [t[i] for i in keep] for n, t in times.items()}
    base = times["emitted"]
    print(f"  {'ms':<28} {'median':>9} {'p25':>8} {'p75':>8} {'min':>8} {'faults':>7}"
          "   emitted/this: median  per-round")
    for n, t in times.items():
        q1, q2, q3 = statistics.quantiles(t, n=4) if len(t) > 1 else t * 3
        pf = statistics.median(faults[n][i] for i in keep)
        line = f"  {n:<28} {q2 * 1e3:9.1f} {q1 * 1e3:8.1f} {q3 * 1e3:8.1f} {min(t) * 1e3:8.1f} {pf:7.0f}"
        if n != "emitted":
            paired = statistics.median(a / b for a, b in zip(base, t))
            line += f"   {' ' * 13}{statistics.median(base) / statistics.median(t):6.3f}  {paired:9.3f}"
        print(line)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="*", default=[c.name for c in CASES], choices=[c.name for c in CASES])
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: this process's CPU time (all threads), for a busy machine; run it with "
                         "OMP_WAIT_POLICY=PASSIVE so that threads waiting at a barrier do not count")
    ap.add_argument("--opt", type=int, default=0, choices=(0, 1, 2), help="emit at -O0 (default), -O1 or -O2")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    print(f"emitted at -O{args.opt}; {args.warmup} warm-up rounds, {args.reps} interleaved rounds, eval, no_grad, "
          f"{args.clock} time\n")
    for case in (c for c in CASES if c.name in args.cases):
        with torch.no_grad():
            calls = contenders(case, args.opt)
            diff = check_same(calls)
            faults: dict[str, list[int]] = {}
            clock = time.process_time if args.clock == "cpu" else time.perf_counter
            times, quiet = bench(calls, args.warmup, args.reps, faults, clock)
        print(f"{case.name}  ({case.what}; outputs agree to {diff:.1e})")
        report(times, quiet, faults)
        print(flush=True)


if __name__ == "__main__":
    main()
