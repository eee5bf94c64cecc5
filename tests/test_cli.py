"""The command line as a user meets it: exit codes, streams, colour, JSON, bad inputs."""

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

FIX = Path(__file__).resolve().parent / "fixtures"


def netc(*args, env=None, cwd=FIX):
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "netc.cli", *args], check=False, capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=60)


def test_check_ok_prints_model_signature_and_exits_0():
    r = netc("check", "lenet.net")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert "LeNet(image: float[N, 1, 28, 28]) -> float[N, 10]  params 421,642" in r.stdout


def test_check_error_goes_to_stderr_with_location_and_exit_1():
    r = netc("check", "lenet_no_flatten.net")
    assert r.returncode == 1
    assert r.stdout == ""
    first = r.stderr.splitlines()[0]
    assert first == "lenet_no_flatten.net:5:24: error: linear needs a 2-d input [N, F]; got float[N, 64, 7, 7]"
    assert "note: float[N, 64, 7, 7] comes from maxpool2d at lenet_no_flatten.net:4:48" in r.stderr
    assert "hint: put `flatten` before `linear`" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args, needle", [
    (["check", "missing.net"], "missing.net: no such file"),
    (["check", "."], "is a directory"),
    (["check"], "the following arguments are required"),
    (["frobnicate", "lenet.net"], "invalid choice"),
    (["summary", "lenet.net", "--depth", "0"], "--depth must be at least 1"),
    (["summary", "lenet.net", "--model", "Nope"], "--model Nope: no such model"),
    (["check", "lenet.net", "-D", "novalue"], "-D needs NAME=VALUE"),
])
def test_bad_usage_exits_2_without_traceback(args, needle):
    r = netc(*args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02\xff\xfe binary", b"\xff\xfe\x00m\x00o",
                                     b"model", b"model M(x: float[N]) {", "模型 M".encode()])
def test_junk_never_tracebacks(tmp_path, content):
    spec = tmp_path / "junk.net"
    spec.write_bytes(content)
    r = netc("check", str(spec))
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert "internal error" not in r.stderr
    if r.returncode == 1:
        assert r.stderr.startswith(f"{spec}:"), r.stderr


def test_empty_file_is_a_valid_spec_with_no_models(tmp_path):
    spec = tmp_path / "empty.net"
    spec.write_text("# nothing yet\n")
    r = netc("check", str(spec))
    assert r.returncode == 0
    assert "0 models" in r.stdout


def test_summary_json_totals_and_rows():
    r = netc("summary", "lenet.net", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    (model,) = data["models"]
    assert model["model"] == "LeNet"
    assert data["schema"] == "netc.summary/1"
    assert model["totals"] == {"params": 421642, "buffers": 0, "macs": {
        "value": None, "text": "4241152*N", "terms": [{"coeff": 4241152, "dims": {"N": 1}}], "atoms": {}}}
    rows = {row["name"]: row for row in model["rows"]}
    assert rows["conv2d"]["shape"] == "[N, 32, 28, 28]" and rows["conv2d"]["params"] == 320
    assert rows["linear"]["params"] == 3136 * 128 + 128
    assert sum(row["params"] for row in model["rows"]) == 421642


def test_summary_table_lists_every_layer_and_totals():
    r = netc("summary", "lenet.net")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert any(line.split()[:2] == ["linear_1", "linear"] and "[N, 10]" in line for line in lines)
    assert "Total params: 421,642" in r.stdout
    assert "Total MACs: 4,241,152·N" in r.stdout


def _run_in_terminal(args, env):
    """Run netc with stdout on a pseudo-terminal; return what the terminal shows."""
    leader, follower = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    full_env.update(env)
    proc = subprocess.Popen([sys.executable, "-m", "netc.cli", *args], stdout=follower,
                            stderr=follower, cwd=FIX, env=full_env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_and_plain_when_piped_or_no_color():
    shown = _run_in_terminal(["check", "lenet_no_flatten.net"], {})
    assert "\x1b[" in shown
    assert "\x1b[" not in _run_in_terminal(["check", "lenet_no_flatten.net"], {"NO_COLOR": "1"})
    piped = subprocess.run([sys.executable, "-m", "netc.cli", "check", "lenet_no_flatten.net"], check=False, cwd=FIX,
                           capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "NO_COLOR"})
    assert "\x1b[" not in piped.stderr


def test_define_changes_the_model():
    spec = FIX / "lenet_classes.net"
    r = netc("summary", spec.name, "--json", "-D", "classes=7")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["models"][0]["outputs"][0]["type"] == "float[N, 7]"
