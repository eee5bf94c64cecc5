"""Running the real command line in-process for the tests: exit status, stdout, stderr."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from netc.cli import main


def run_cli(*args: str, cwd: Path, monkeypatch) -> tuple[int, str, str]:
    """``netc ARGS`` in ``cwd`` without colour: (exit status, stdout, stderr)."""
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("NO_COLOR", "1")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def first_error(err: str, path: str) -> str:
    """The first line of ``err``, checked to be a located error of ``path`` with no traceback."""
    first = err.splitlines()[0]
    assert re.match(rf"^{re.escape(path)}:\d+:\d+: error: ", first), err
    assert "Traceback" not in err and "internal error" not in err
    return first
