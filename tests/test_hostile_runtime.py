"""`netc run` and `netc verify` on hostile specs and weights (issue 17): what they report must
be true (identical non-finite values agree, dtypes and 0-d shapes match across backends),
what they cannot do in budget is refused with a located diagnostic, and weights are checked
before they are read."""

from __future__ import annotations

import numpy as np
import pytest
from netc.compiler.source import SpecError
from netc.runtime.parity import compare

import netc
from netc.cli import main


def netc_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def spec(tmp_path, text: str, name: str = "m.net"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- item 12: verify tells the truth -----------------------------------------------------------

def test_verify_identical_non_finite_values_agree(tmp_path, capsys):
    path = spec(tmp_path, "model M(x: float[N, 4]) {\n    return x / 0.0, log(x - x - 1.0)\n}\n")
    code, out, err = netc_cli(capsys, "verify", path)
    assert code == 0, out + err
    # no RuntimeWarning from NumPy either: stderr holds at most verify's progress lines,
    # which appear once a model has taken a second
    assert all(line.startswith("netc: verifying M") for line in err.splitlines()), err
    assert "max abs diff 0, max rel diff 0" in out
    assert "both give non-finite values, the first inf at output0[0, 0]" in out
    assert "the first nan at output1[0, 0]" in out


def test_compare_reports_the_first_non_finite_difference():
    want = np.array([[1.0, np.nan], [np.inf, 2.0]], np.float32)
    assert compare("y", want.copy(), want).problem is None
    got = want.copy()
    got[1, 0] = 3.0  # torch has inf there
    o = compare("y", got, want)
    assert o.max_abs == np.inf
    assert o.problem == "first non-finite difference at y[1, 0]: NumPy 3.0, torch inf"
    got = want.copy()
    got[1, 0] = -np.inf
    assert "y[1, 0]: NumPy -inf, torch inf" in compare("y", got, want).problem


def test_verify_keeps_0d_inputs_and_int_division_dtypes(tmp_path, capsys):
    path = spec(tmp_path, "model M(x: float[], y: int[N, 4]) {\n    return x + 1.0, y / 2, 1.0 / y\n}\n")
    code, out, err = netc_cli(capsys, "verify", path)
    assert code == 0, out + err
    assert "shape" not in out and "dtype" not in out
    for backend in ("torch", "numpy"):
        code, out, err = netc_cli(capsys, "run", "--backend", backend, path)
        assert code == 0, err
        assert "output0  [] float32" in out
        assert "output1  [2, 4] float32" in out and "output2  [2, 4] float32" in out


# -- item 7: run and verify are bounded --------------------------------------------------------

WIDE = "model Big(x: float[N, 64]) {\n    return x -> linear(100000) -> relu -> linear(64)\n}\n"


def test_run_and_verify_refuse_past_the_memory_budget_at_the_node(tmp_path, capsys):
    path = spec(tmp_path, WIDE)
    for command in (["run", "--backend", "numpy"], ["run", "--backend", "torch"], ["verify"]):
        code, out, err = netc_cli(capsys, *command, "--max-memory", "100M", "--size", "N=1000", path)
        assert code == 1 and out == "", err
        first = err.splitlines()[0]
        assert first.startswith(f"{path}:2:17: error: "), err
        assert "at N=1000 needs about" in first and "more than the memory budget of 100.0 MiB" in first
        assert "`linear` (linear): float[N, 100000] needs 381.5 MiB" in first
    code, out, err = netc_cli(capsys, "run", "--backend", "numpy", "--max-memory", "100M", path)  # N=2 fits
    assert code == 0 and "output  [2, 64] float32" in out, err


def test_numpy_program_checks_its_budget_and_turns_memory_errors_into_diagnostics(tmp_path):
    from netc.runtime.budget import BudgetError

    prog = netc.compile_file(spec(tmp_path, WIDE))
    ex = prog.to_numpy("Big", max_memory=50 << 20)
    assert ex(np.zeros((2, 64), np.float32)).shape == (2, 64)
    with pytest.raises(BudgetError, match=r"m.net:2:17: error: running model `Big` at N=200 needs about 152.7 MiB"):
        ex(np.zeros((200, 64), np.float32))
    # no budget: NumPy's own MemoryError (5.68 PiB, refused by malloc at once) becomes a diagnostic
    up = netc.compile_file(spec(tmp_path, "model U(x: float[N, 1, 4, 4]) {\n    return x -> upsample(10000000)\n}\n",
                                "u.net"))
    with pytest.raises(BudgetError, match=r"u.net:1:9: error: model `U` ran out of memory: Unable to allocate"):
        up.to_numpy("U", max_memory=None)(np.zeros((1, 1, 4, 4), np.float32))


def test_token_ids_stay_below_the_vocabulary_through_int_ops(tmp_path, capsys):
    path = spec(tmp_path, "model E(x: int[N, 6]) {\n    return x -> reshape(N, 2, 3) -> embedding(1, 4)\n}\n")
    code, out, err = netc_cli(capsys, "verify", path)
    assert code == 0 and all(line.startswith("netc: verifying E") for line in err.splitlines()), err
    assert "output  [2, 2, 3, 4]  max abs diff 0" in out


def test_kernel_attributes_past_int32_are_rejected_by_the_checker(tmp_path, capsys):
    path = spec(tmp_path, "model S(x: float[N, 2, 8, 8]) {\n"
                          "    return x -> conv2d(4, 3, stride=9223372036854775807)\n}\n")
    code, _, err = netc_cli(capsys, "check", path)
    assert code == 1
    assert err.startswith(f"{path}:2:17: error: conv2d needs stride <= 2**31 - 1 (the largest size torch's "
                          "kernels take); got stride=9223372036854775807")
    path = spec(tmp_path, "model P(x: float[N, 2, 8]) {\n    return x -> maxpool1d(1, stride=2147483648)\n}\n", "p.net")
    code, _, err = netc_cli(capsys, "check", path)
    assert code == 1 and "maxpool1d needs stride <= 2**31 - 1" in err.splitlines()[0]
    path = spec(tmp_path, "model P(x: float[N, 2, 8]) {\n    return x -> maxpool1d(1, stride=2147483647)\n}\n", "q.net")
    assert netc_cli(capsys, "verify", path)[0] == 0  # the bound itself runs


# -- item 7: run and verify are bounded in time -----------------------------------------------

# 64 applications of one 8192-wide linear: 1.1e12 multiply-adds at N=256 (minutes of CPU for
# verify on a 2-core machine), yet little memory (weights 256 MiB, tensors 512 MiB)
SLOW = "model Slow(x: float[N, 8192]) {\n    let l = linear(8192)\n    return x -> l * 64\n}\n"


def test_a_run_that_cannot_finish_in_time_is_refused_before_it_starts(tmp_path, capsys):
    import time

    path = spec(tmp_path, SLOW)
    for command, what, macs in ((["verify"], "verifying", "8.59e15 multiply-adds (2 runs of 4.29e15)"),
                                (["run", "--backend", "numpy"], "running", "4.29e15 multiply-adds")):
        start = time.monotonic()
        # memory is no object here (nothing is allocated): the default time limit refuses it
        code, out, err = netc_cli(capsys, *command, "--size", "N=1000000", "--max-memory", "8T", path)
        assert time.monotonic() - start < 10
        assert code == 1 and out == "", err
        first, *rest = err.splitlines()
        assert first.startswith(f"{path}:1:12: error: {what} model `Slow` at N=1000000 needs {macs}: at least "), err
        assert "even at 1e13 a second (faster than any CPU), more than the 29" in first  # 29x s left of 300
        assert f"note: the most is `l_1.0` (linear): 6.71e13 multiply-adds at {path}:3:17" in err
        assert "--max-time" in rest[-1]
    # the API: max_time= is the same check, before any weight exists
    prog = netc.compile_file(path)
    from netc.runtime.budget import BudgetError, check_time
    from netc.runtime.parity import run

    with pytest.raises(BudgetError, match=r"running model `Slow` at N=100000 needs 4.29e14 multiply-adds: at "
                                          r"least 43 s .* more than the 10 s left"):
        run(prog, "Slow", "torch", sizes={"N": 100000}, max_time=10, max_memory=None)
    check_time(prog.graph("Slow"), {"N": 2}, 0.01)  # 8.6e9 multiply-adds: at least 0.86 ms, may fit


def test_netc_stops_a_slow_run_at_its_deadline(tmp_path):
    """The `netc` command, timed from outside: a verify that would run for minutes is stopped
    at --max-time (less the 2 s margin), with a diagnostic at the model it was running."""
    import subprocess
    import sys
    import time

    path = spec(tmp_path, SLOW)
    start = time.monotonic()
    # 8 s less the margin: a loaded machine has the seconds it needs to import torch and build
    # the weights before the run, which alone (4.4e12 multiply-adds) takes far longer
    done = subprocess.run([sys.executable, "-m", "netc", "verify", "--size", "N=512", "--max-time", "8", str(path)],
                          check=False, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - start
    assert done.returncode == 1 and done.stdout == "", done.stderr
    lines = [ln for ln in done.stderr.splitlines() if not ln.startswith("netc: verifying")]
    assert lines[0] == (f"{path}:1:12: error: netc verify did not finish in 8 s (the limit, --max-time): stopped "
                        "while verifying `Slow`"), done.stderr
    assert "--max-time SECONDS" in lines[-1] and "Traceback" not in done.stderr
    assert 5.5 < took < 8, f"took {took:.1f} s"  # stopped at 8 s less the 2 s margin


def test_in_process_the_deadline_interrupts_the_run(tmp_path, capsys):
    """netc.cli.main([...]) inside another program does not end that program: the run is
    interrupted at its next Python instruction and the same diagnostic is reported. (The
    deadline, 8 s less the 2 s margin, leaves a loaded machine the seconds it needs to build
    the weights first. The run, 256 matmuls of 1.7e10 multiply-adds each, takes minutes; each
    matmul is one instruction, which the interrupt waits for.)"""
    import time

    path = spec(tmp_path, SLOW.replace("l * 64", "l * 256"))
    start = time.monotonic()
    code, out, err = netc_cli(capsys, "run", "--backend", "numpy", "--size", "N=256", "--max-time", "8", path)
    assert code == 1 and out == "", err
    assert f"{path}:1:12: error: netc run did not finish in 8 s (the limit, --max-time): stopped while running " \
           "`Slow`" in err
    assert time.monotonic() - start < 60  # the matmul under way finishes first; the whole run takes minutes


def test_in_process_a_deadline_past_before_the_run_is_a_diagnostic(tmp_path, capsys):
    """A deadline that passes while the command gets ready (here at once: 2 s is the margin)
    stops it before the run, with the diagnostic: not a KeyboardInterrupt from the watchdog's
    timer landing before the run began (that was exit 130 on a loaded machine)."""
    path = spec(tmp_path, SLOW)
    for command, doing in (("run", "running"), ("verify", "verifying")):
        args = ["--backend", "numpy"] if command == "run" else []
        code, out, err = netc_cli(capsys, command, *args, "--size", "N=2", "--max-time", "2", path)
        assert code == 1 and out == "", err
        assert f"{path}:1:12: error: netc {command} did not finish in 2 s (the limit, --max-time): stopped before " \
               f"{doing} `Slow`" in err


def test_max_time_needs_a_positive_duration(capsys):
    for bad in ("0", "-1", "soon", "inf", "5x"):
        with pytest.raises(SystemExit) as e:
            main(["run", "--backend", "numpy", "--max-time", bad, "m.net"])
        assert e.value.code == 2
        assert "--max-time" in capsys.readouterr().err
    from netc.cli import _max_time

    assert [_max_time(t) for t in ("90", "90s", "1.5m", "1h")] == [90, 90, 90, 3600]


# -- item 9: weights are checked before they are read ------------------------------------------

SMALL = "model L(x: float[N, 3]) {\n    return x -> linear(4)\n}\n"


def _npz_member(zf, name: str, shape, dtype, chunks: int = 0):
    """A member whose .npy header says ``shape``/``dtype``, followed by ``chunks`` MiB of zeros."""
    import io

    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                               "shape": shape})
    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        f.write(head.getvalue())
        for _ in range(chunks):
            f.write(bytes(1 << 20))


def test_npz_bomb_is_refused_from_its_header_before_decompressing(tmp_path):
    import tracemalloc
    import zipfile

    from netc.runtime.weights import WeightError

    prog = netc.compile_file(spec(tmp_path, SMALL))
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        _npz_member(zf, "linear.weight", (4096, 4096), "<f4", chunks=64)  # 64 MiB of zeros, ~64 KiB on disk
        _npz_member(zf, "linear.bias", (4,), "<f4")
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(WeightError, match=r"weight `linear.weight` has shape \[4096, 4096\]; the model needs "
                                              r"\[4, 3\]"):
            prog.to_numpy("L", weights=bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak  # nothing near the 64 MiB the header claims was read


def test_weight_dtypes_are_checked(tmp_path):
    from netc.runtime.weights import WeightError, save_npz

    prog = netc.compile_file(spec(tmp_path, SMALL))
    good = {"linear.weight": np.ones((4, 3), np.float32), "linear.bias": np.zeros(4, np.float32)}
    for bad in (np.ones((4, 3), bool), np.ones((4, 3), np.int64), np.ones((4, 3), np.complex64),
                np.full((4, 3), None, object)):
        with pytest.raises(WeightError, match=rf"weight `linear.weight` has dtype {bad.dtype}; weights are "
                                              "float16, float32 or float64"):
            prog.to_numpy("L", weights={**good, "linear.weight": bad})
    path = tmp_path / "obj.npz"
    np.savez(path, **{**good, "linear.weight": np.full((4, 3), None, object)})  # pickled objects
    with pytest.raises(WeightError, match="weight `linear.weight` has dtype object"):
        prog.to_numpy("L", weights=path)
    half = {k: v.astype(np.float16) for k, v in good.items()}  # float16 is converted to float32
    save_npz(half, tmp_path / "half.npz")
    for w in (half, tmp_path / "half.npz"):
        ex = prog.to_numpy("L", weights=w)
        assert {v.dtype for v in ex.weights["L"].values()} == {np.dtype(np.float32)}
        assert ex(np.ones((2, 3), np.float32)).tolist() == [[3.0] * 4] * 2


def test_return_of_nothing_is_an_error(tmp_path, capsys):
    for kind, text in (("model `M`", "model M(x: float[N, 12]) {\n    return ()\n}\n"),
                       ("block `B`", "block B(x) {\n    return ()\n}\nmodel M(x: float[N, 12]) {\n    return x -> B\n}\n")):
        path = spec(tmp_path, text)
        code, out, err = netc_cli(capsys, "check", path)
        assert code == 1 and out == ""
        assert err.startswith(f"{path}:2:5: error: {kind} returns nothing: `return ()`"), err


def test_in_process_an_interrupt_the_body_swallowed_is_still_the_deadline():
    """The watchdog's interrupt can land in code that swallows it (a finaliser prints
    "Exception ignored" and goes on), and the run then ends normally, late: the command
    still reports its deadline, as the `netc` process would have."""
    import time

    dog = _watchdog(0.2)
    with pytest.raises(SpecError) as caught, dog:
        end = time.monotonic() + 5
        while time.monotonic() < end and not dog.fired:
            try:
                time.sleep(0.05)
            except KeyboardInterrupt:
                pass  # swallowed, as a finaliser's exception is
        time.sleep(0.1)
    assert dog.fired and [d.message for d in caught.value.diagnostics] == ["past the deadline"]
    with _watchdog(60):  # a body that ends in time: nothing
        pass


def test_in_process_a_swallowed_interrupt_is_followed_by_another():
    """The watchdog interrupts again until the body stops: the first interrupt lands where it
    is swallowed (here on purpose, as Python swallows one raised in a finaliser), the next
    stops the body, long before the body would end by itself."""
    import time

    swallowed = []
    start = time.monotonic()
    with pytest.raises(SpecError), _watchdog(0.2):
        while time.monotonic() - start < 10:
            try:
                time.sleep(0.01)
            except KeyboardInterrupt:
                if swallowed:
                    raise
                swallowed.append(time.monotonic() - start)
    assert len(swallowed) == 1 and time.monotonic() - start < 3, (swallowed, time.monotonic() - start)


def test_in_process_the_deadline_stops_a_body_that_ignores_sigint_or_runs_in_a_thread():
    """A program that ignores SIGINT (a background job: `cmd &` from a script) or calls netc
    from a thread of its own is still stopped at the deadline: the watchdog raises in the
    body's thread, not through the SIGINT handler (``_thread.interrupt_main`` does nothing
    when SIGINT is ignored, and reaches only the main thread)."""
    import signal
    import threading
    import time


    def body() -> float:
        start = time.monotonic()
        with pytest.raises(SpecError), _watchdog(0.2):
            while time.monotonic() - start < 10:
                time.sleep(0.01)
        return time.monotonic() - start

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert body() < 2
    finally:
        signal.signal(signal.SIGINT, old)
    took = []
    thread = threading.Thread(target=lambda: took.append(body()))
    thread.start()
    thread.join(15)
    assert took and took[0] < 2, took


def _watchdog(after: float):
    """An in-process Watchdog whose deadline passes ``after`` seconds from now (the stop
    margin added), reporting "past the deadline"."""
    import time

    from netc.compiler.limits import STOP_MARGIN, Deadline
    from netc.compiler.source import Diagnostic

    from netc.watchdog import Watchdog

    return Watchdog(Deadline(STOP_MARGIN + after, time.monotonic()), lambda: [Diagnostic("past the deadline", None)],
                    hard=False)
