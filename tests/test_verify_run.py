"""`netc verify` and `netc run`, in-process through ``netc.cli.main``.

Every example, every model, passes ``netc verify`` in eval mode at its default tolerance
(float32: max rel diff <= 1e-4, float64: <= 1e-10); the big ones run shrunk with -D and
--size. A tolerance the numbers cannot meet exits 1; ``netc run`` is deterministic for a seed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import netc as netc_api
from netc.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# spec -> the -D and --size arguments that make it small enough to run in a test
SHRINK = {
    "dcgan": ["-D", "ngf=8", "-D", "ndf=8", "--size", "N=1"],
    "gpt2": ["-D", "layers=2", "-D", "width=32", "-D", "vocab=100", "-D", "heads=2", "-D", "context=64",
             "--size", "T=7"],
    "bert": ["-D", "layers=2", "-D", "width=32", "-D", "vocab=100", "-D", "heads=2", "-D", "ff=64",
             "-D", "context=64", "--size", "T=7"],
    "gru_classifier": ["-D", "vocab=100", "-D", "dim=16", "-D", "hidden=24"],
    "llama": ["-D", "layers=2", "-D", "width=32", "-D", "vocab=100", "-D", "heads=4", "-D", "kv_heads=2",
              "-D", "ff=48", "--size", "T=7"],
    "lstm_lm": ["-D", "vocab=100", "-D", "dim=32"],
    "resnet18": ["-D", "classes=10", "--size", "N=1"],
    "seq2seq": ["-D", "vocab=50", "-D", "dim=16", "-D", "hidden=32"],
    "vgg11": ["-D", "classes=10", "--size", "N=1"],
    "transformer": ["--size", "S=3", "--size", "T=4"],
    "seq2seq_attention": ["-D", "src_vocab=50", "-D", "tgt_vocab=40", "-D", "hidden=16"],
    "mobilenet_v2": ["-D", "classes=10", "--size", "N=1", "--size", "H=64", "--size", "W=64"],
    "efficientnet_b0": ["-D", "classes=10", "--size", "N=1", "--size", "H=32", "--size", "W=40"],
    "unet": ["--size", "N=1", "--size", "H=19", "--size", "W=23"],
    "convnext_tiny": ["-D", "classes=10", "-D", "width=8", "-D", "depth1=1", "-D", "depth2=1", "-D", "depth3=2",
                      "-D", "depth4=1", "--size", "N=1", "--size", "H=32", "--size", "W=32"],
    "vit_b16": ["-D", "size=32", "-D", "patch=8", "-D", "width=32", "-D", "layers=2", "-D", "heads=2",
                "-D", "mlp=64", "-D", "classes=10"],
}
# float32 needs MobileNetV2 at 64x64 to meet its tolerance; float64 (tol 1e-10) does not: the
# float64 runs (also every -O2 run) take the size the other tests use, at a third of the cost.
# EfficientNet-B0 in float64 (torch's float64 depthwise convolutions are slow) runs at the
# smallest size its five stride-2 stages take, 32x32.
SHRINK_FLOAT64 = {
    "mobilenet_v2": ["-D", "classes=10", "--size", "N=1", "--size", "H=32", "--size", "W=40"],
    "efficientnet_b0": ["-D", "classes=10", "--size", "N=1", "--size", "H=32", "--size", "W=32"],
}
SPECS = sorted(p.stem for p in EXAMPLES.glob("*.net"))
PAIRS = [("autoencoder", "AutoEncoder"), ("dcgan", "DCGAN"), ("seq2seq", "Seq2Seq")]
VERDICT = re.compile(r"^(\w+) \((float32|float64), seed \d+.*\): max abs diff (\S+), max rel diff (\S+) "
                     r"\(tol (\S+)\)  (ok|FAIL)$", re.MULTILINE)


def netc(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def spec_args(spec: str, dtype: str = "float32") -> list[str]:
    shrink = SHRINK_FLOAT64.get(spec) if dtype == "float64" else None
    return [str(EXAMPLES / f"{spec}.net"), *(shrink or SHRINK.get(spec, []))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", SPECS)
def test_verify_every_example(capsys, spec, dtype):
    """Every model of the spec (no --model: all of them) agrees within the default tolerance."""
    code, out, err = netc(capsys, "verify", *spec_args(spec, dtype), "--dtype", dtype)
    assert code == 0, out + err
    verdicts = VERDICT.findall(out)
    check = re.search(r"(\d+) models?", netc(capsys, "check", *spec_args(spec)[:1])[1].splitlines()[-1])
    assert len(verdicts) == int(check.group(1)), out
    tol = {"float32": 1e-4, "float64": 1e-10}[dtype]
    for model, dt, _, rel, shown_tol, verdict in verdicts:
        assert dt == dtype and verdict == "ok" and float(rel) <= tol and float(shown_tol) == tol, out


@pytest.mark.parametrize("spec", SPECS)
def test_verify_every_example_at_O2(capsys, spec):
    """Both backends run the -O2 program (fused layers, channels-last, ...) and agree."""
    code, out, err = netc(capsys, "verify", *spec_args(spec, "float64"), "-O", "2", "--dtype", "float64")
    assert code == 0, out + err
    verdicts = VERDICT.findall(out)
    assert verdicts and all(v[5] == "ok" and float(v[3]) <= 1e-10 for v in verdicts), out


@pytest.mark.parametrize("spec, pair", PAIRS)
def test_verify_pair_checks_both_models(capsys, spec, pair):
    code, out, err = netc(capsys, "verify", *spec_args(spec), "--model", pair)
    assert code == 0, out + err
    assert len(VERDICT.findall(out)) == 2


def test_wrong_tolerance_exits_1(capsys):
    code, out, err = netc(capsys, "verify", EXAMPLES / "lenet.net", "--tol", "0")
    (_, _, _, rel, _, verdict), = VERDICT.findall(out)
    assert float(rel) > 0 and verdict == "FAIL"
    assert code == 1 and "LeNet: torch and NumPy differ: max rel diff" in err


def test_verify_reports_every_output(capsys):
    code, out, _ = netc(capsys, "verify", *spec_args("seq2seq"), "--model", "Encoder", "--seed", "3")
    assert code == 0
    for name in ("h", "c"):
        assert re.search(rf"^  {name}  \[2, 2, 32\]  max abs diff \S+, max rel diff \S+$", out, re.MULTILINE), out


@pytest.mark.parametrize("args, code, message", [
    (["--tol", "x"], 2, "--tol needs a number"),
    (["--tol", "-1"], 2, "--tol must be 0 or more"),
    (["--dtype", "float16"], 2, "invalid choice"),
    (["--model", "Nope"], 2, "--model Nope: no such model or pair"),
    (["--size", "N=0"], 2, "--size needs SYM=K"),
    (["--size", "Q=3"], 2, "--size Q: no input of LeNet has a dim named Q"),
])
def test_verify_usage_errors(capsys, args, code, message):
    try:
        got = main(["verify", str(EXAMPLES / "lenet.net"), *args])
    except SystemExit as e:  # argparse's own checks exit from inside the parser
        got = e.code
    err = capsys.readouterr().err
    assert got == code and message in err and "Traceback" not in err


def test_spec_errors_exit_1(capsys, tmp_path):
    bad = tmp_path / "bad.net"
    bad.write_text("model M(x: float[N, 4]) -> float[N, 4] {\n    return x -> linear(3)\n}\n")
    for command in (["verify"], ["run", "--backend", "numpy"]):
        code, _, err = netc(capsys, *command, bad)
        assert code == 1 and f"{bad}:" in err and "error:" in err and "Traceback" not in err


def test_run_fails_cleanly_on_sizes_the_model_cannot_take(capsys):
    code, _, err = netc(capsys, "run", *spec_args("gpt2"), "--backend", "torch", "--size", "T=65")
    assert code == 1 and "running GPT2 (torch) failed" in err and "Traceback" not in err


RUN_LINE = re.compile(r"^  (\w+) +\[([\d, ]*)\] (float32|float64|int64|bool)  mean (\S+)  std (\S+)  "
                      r"min (\S+)  max (\S+)$", re.MULTILINE)


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_run_prints_shapes_and_is_deterministic(capsys, backend):
    args = ["run", *spec_args("char_rnn"), "--backend", backend, "--size", "N=3", "--size", "T=16"]
    code, out, err = netc(capsys, *args)
    assert code == 0, err
    assert out.splitlines()[0] == f"CharRNN ({backend}, float32, seed 0, N=3, T=16)"
    assert out.splitlines()[2] == f"CharLSTM ({backend}, float32, seed 0, N=3, T=16)"
    assert [m[:3] for m in RUN_LINE.findall(out)] == [("output", "3, 16, 96", "float32")] * 2, out
    assert netc(capsys, *args)[1] == out  # same seed, same numbers
    other = netc(capsys, *args, "--seed", "1")[1]
    assert other != out and len(RUN_LINE.findall(other)) == 2


def test_run_backends_agree_for_a_seed(capsys):
    """numpy runs the torch module's seeded weights: the two print the same stats (to 3 digits)."""
    def stats(backend):
        out = netc(capsys, "run", EXAMPLES / "lenet.net", "--backend", backend, "--seed", "7",
                   "--dtype", "float64")[1]
        return [tuple(round(float(v), 3) for v in m[3:]) for m in RUN_LINE.findall(out)]

    assert stats("torch") == stats("numpy") != []


def test_run_pair_runs_both_models(capsys):
    code, out, _ = netc(capsys, "run", *spec_args("autoencoder"), "--backend", "numpy", "--model", "AutoEncoder")
    assert code == 0
    assert [line.split(" (")[0] for line in out.splitlines() if not line.startswith(" ")] == ["Encoder", "Decoder"]
    assert [m[1] for m in RUN_LINE.findall(out)] == ["2, 32", "2, 1, 28, 28"]


def test_without_torch(capsys, monkeypatch):
    """NumPy runs on runtime.weights.init_weights when torch is missing; torch and verify say why not."""
    from netc.runtime import parity

    monkeypatch.setattr(parity, "_torch", lambda: None)
    code, out, _ = netc(capsys, "run", EXAMPLES / "autoencoder.net", "--backend", "numpy", "--model", "AutoEncoder")
    assert code == 0 and [m[1] for m in RUN_LINE.findall(out)] == ["2, 32", "2, 1, 28, 28"]
    for command in (["run", "--backend", "torch"], ["verify"]):
        code, _, err = netc(capsys, *command, EXAMPLES / "lenet.net")
        assert code == 2 and "needs torch" in err and "Traceback" not in err


# -- verify's weights keep the signal; a vacuous comparison fails ------------------------------

DEEP = """
block ConvBNReLU(x: [N, C, H, W], out: int) {
    return x -> conv2d(out, 3, padding=1, bias=false) -> batchnorm -> relu
}
model Deep(image: float[N, 3, 16, 16]) -> float[N, 10] {
    return image -> ConvBNReLU(16) * 30 -> global_avgpool -> linear(10)
}
"""


def _torch_and_numpy(prog, module, inputs, tamper=None):
    """torch's output and NumPy's with the module's weights, ``tamper`` applied to the first
    conv's weight on the NumPy side (a stand-in for a wrong kernel early in the network)."""
    import torch
    from netc.runtime.parity import call_torch, compare

    weights = {k: v.clone() for k, v in module.state_dict().items()}
    if tamper:
        weights["conv_bn_re_lu.0.conv2d.weight"] *= tamper
    got = prog.to_numpy("Deep", weights=weights)(*inputs.values())
    (want,) = call_torch(module, inputs)
    return compare("output", got, want), torch.from_numpy(want)


def test_verify_weights_keep_deep_signals(tmp_path):
    """30 conv/bn/relu layers: with torch's default weights the output is the classifier's bias
    (vacuous: a 1% error in the first conv does not show); with verify's it shows."""
    import torch
    from netc.runtime import parity
    from netc.runtime.inputs import random_inputs
    from netc.runtime.scaled_init import scale_weights

    spec = tmp_path / "deep.net"
    spec.write_text(DEEP)
    prog = netc_api.compile_file(spec)
    inputs = random_inputs(prog.graph("Deep"), None, 0)
    other = random_inputs(prog.graph("Deep"), None, 1)
    module = parity.torch_module(prog, "Deep", 0, "float32")
    (default,), (default_other,) = (parity.call_torch(module, x) for x in (inputs, other))
    assert parity.vacuous(default, default_other, 1e-4) is not None
    assert _torch_and_numpy(prog, module, inputs, tamper=1.01)[0].max_rel <= 1e-4  # the error is invisible
    scale_weights(module, [torch.from_numpy(x) for x in inputs.values()], seed=0)
    bn = module.conv_bn_re_lu[29].batchnorm
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    fair, out = _torch_and_numpy(prog, module, inputs)
    assert fair.max_rel <= 1e-4 and 0.05 < out.std().item() < 50
    assert _torch_and_numpy(prog, module, inputs, tamper=1.01)[0].max_rel > 1e-3  # now it shows
    (v,) = parity.verify(prog, "Deep")
    assert v.ok and not v.is_vacuous


@pytest.mark.parametrize("body, why", [("x * 0 -> linear(4)", "does not depend on the inputs"),
                                       ("x * 0", "too small to compare")])
def test_vacuous_comparison_fails(capsys, tmp_path, body, why):
    spec = tmp_path / "vacuous.net"
    spec.write_text(f"model Vacuous(x: float[N, 4]) -> float[N, 4] {{\n    return {body}\n}}\n")
    code, out, err = netc(capsys, "verify", spec)
    assert code == 1 and "VACUOUS" in out and why in out
    assert "the comparison shows nothing" in err and why in err and "Traceback" not in err
