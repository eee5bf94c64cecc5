"""A wall-clock bound for a command that runs models (``netc run`` / ``netc verify --max-time``).

The work may sit inside one torch or NumPy kernel for minutes, where Python cannot raise an
exception, so a timer thread watches the deadline. When it passes:

- the ``netc`` command itself (``hard``): the thread prints the diagnostic and ends the
  process with exit 1 (``os._exit``: nothing of the run is needed any more). Should a C
  extension hold Python's lock so that the thread cannot run, ``faulthandler``'s own C thread
  ends the process BACKSTOP_S later (exit 1, without the message; its traceback goes to
  ``os.devnull``);
- ``netc.cli.main([...])`` called inside another program (tests, a fuzzer): the process is not
  ours to end, so the thread raises :class:`DeadlinePassed` in the thread running the body
  (``PyThreadState_SetAsyncExc``), which stops at its next Python instruction, and the
  command reports the same diagnostic. That works whatever the process does with SIGINT
  (a background job ignores it, and ``_thread.interrupt_main`` then does nothing) and in any
  thread. It is raised again every REPEAT_S until the body has stopped: one raised inside a
  finaliser or a weakref callback is swallowed by Python.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import sys
import threading
from collections.abc import Callable

from netc.compiler.limits import Deadline
from netc.compiler.source import Diagnostic, SpecError, print_diagnostics

BACKSTOP_S = 5.0
REPEAT_S = 0.25  # in-process: how often the body's thread is interrupted again, until it stops


class DeadlinePassed(KeyboardInterrupt):
    """Raised in the thread running the body when the deadline passes (in-process): an
    interrupt, so that no ``except Exception`` on the way catches it."""


def _raise_in(thread_id: int, exc) -> None:
    """``exc`` (None: none) raised in thread ``thread_id`` at its next Python instruction."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.c_void_p(None if exc is None else id(exc)))


class Watchdog:
    """``with Watchdog(deadline, message, hard):`` the body, stopped at ``deadline`` with the
    diagnostics ``message()`` gives (read when it fires: it may name the model then running)."""

    def __init__(self, deadline: Deadline, message: Callable[[], list[Diagnostic]], hard: bool):
        self.deadline, self.message, self.hard = deadline, message, hard
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._exited = threading.Event()
        self._thread = 0  # the thread running the body (its ident), from __enter__
        self._timer: threading.Timer | None = None
        self._devnull = None

    def __enter__(self) -> None:
        left = self.deadline.left()
        if left <= 0:  # it passed while the command got ready (compiling, importing torch): stop now
            raise SpecError(self.message())
        self._thread = threading.get_ident()
        self._timer = threading.Timer(left, self._fire)
        self._timer.daemon = True
        try:
            self._timer.start()
            if self.hard:
                self._devnull = open(os.devnull, "w")  # held until __exit__
                faulthandler.dump_traceback_later(left + BACKSTOP_S, exit=True, file=self._devnull)
        except KeyboardInterrupt:  # it fired before the body began
            self.__exit__(KeyboardInterrupt, None, None)
            raise

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            if self.hard:
                try:
                    sys.stdout.flush()
                    print_diagnostics(self.message())
                    sys.stderr.flush()
                finally:
                    os._exit(1)
        # In-process: interrupt the body's thread, and again every REPEAT_S until the body is
        # out. An interrupt raised where Python swallows exceptions (a finaliser, a weakref
        # callback: "Exception ignored in ...") would otherwise let the run go on to its end.
        while True:
            with self._lock:
                if self._done:
                    return
                _raise_in(self._thread, DeadlinePassed)
            if self._exited.wait(REPEAT_S):
                return

    def __exit__(self, kind, error, tb) -> bool:
        # The interrupt may land anywhere in the body's thread once the timer has fired: in
        # the body (kind is DeadlinePassed), here, or in code that swallows it (a finaliser's
        # "Exception ignored"), after which the body went on to its end. Past the deadline
        # the command reports it in every case, as the `netc` process itself would have.
        try:
            with self._lock:
                self._done = True
                if self.fired and not self.hard:
                    _raise_in(self._thread, None)  # one still pending is dropped
            self._exited.set()
            self._timer.cancel()
            if self._devnull is not None:
                faulthandler.cancel_dump_traceback_later()
                self._devnull.close()
        except KeyboardInterrupt:
            if not self.fired:
                raise
        if self.fired and (kind is None or issubclass(kind, KeyboardInterrupt)):
            raise SpecError(self.message()) from None
        return False
