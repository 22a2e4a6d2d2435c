"""Progress of long runs: the library reports it, the caller decides how to show it.

Every long-running function of the library (the N-1 sweep, the reference engine, scenario
ensembles, recovery schedules, redundancy evaluations, the report) takes a ``progress``
argument:

* ``None`` or ``False``: nothing is shown (the default of the library);
* ``True``: a tqdm bar on standard error, shown only once the run has lasted
  :data:`DELAY` seconds, and removed when it ends;
* a callable ``progress(done, total, label)``: called after each piece of work with the
  number of units done so far, the total (it can grow, e.g. when the sweep recomputes
  elements) and a short label such as ``"N-1 sweep"``.  It may be called from worker threads,
  one call at a time.

The command line passes ``True`` when standard error is a terminal (``--progress`` and
``--no-progress`` override that); the library never looks at the terminal itself.
"""
from __future__ import annotations

import os
import sys
import threading
from typing import Callable, Union

ProgressCallback = Callable[[int, int, str], None]
ProgressArg = Union[None, bool, ProgressCallback]


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get("CASCADE_PROGRESS_DELAY", "0.5")))
    except ValueError:
        return 0.5


#: Seconds a run must last before its bar appears (environment: ``CASCADE_PROGRESS_DELAY``).
DELAY = _delay()


class Tracker:
    """Counts units of work and forwards them to a bar or a callback (thread-safe)."""

    def __init__(self, progress: ProgressArg, total: int, label: str, unit: str = "it"):
        self.total = int(total)
        self.done = 0
        self.label = label
        self._lock = threading.Lock()
        self._bar = None
        self._callback = None
        if progress is True:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=label, unit=unit, file=sys.stderr, leave=False,
                             delay=DELAY, dynamic_ncols=True)
        elif callable(progress):
            self._callback = progress
        elif progress not in (None, False):
            raise TypeError(f"progress must be None, a bool or a callable, not {progress!r}")

    @property
    def active(self) -> bool:
        return self._bar is not None or self._callback is not None

    def update(self, n: int = 1) -> None:
        if not self.active or n <= 0:
            return
        with self._lock:
            self.done += int(n)
            if self._bar is not None:
                self._bar.update(int(n))
            else:
                self._callback(self.done, self.total, self.label)

    def grow(self, n: int) -> None:
        """More work than announced (``n`` more units)."""
        if not self.active or n <= 0:
            return
        with self._lock:
            self.total += int(n)
            if self._bar is not None:
                self._bar.total = self.total
                self._bar.refresh()

    def part(self) -> ProgressCallback | None:
        """A callback for a sub-task whose units count here too (None when nothing is shown)."""
        if not self.active:
            return None
        seen = [0]

        def forward(done: int, total: int, label: str) -> None:
            self.update(done - seen[0])
            seen[0] = done
        return forward

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def tracker(progress: ProgressArg, total: int, label: str, unit: str = "it") -> Tracker:
    """A :class:`Tracker` for ``total`` units of work (use it in a ``with`` block)."""
    return Tracker(progress, total, label, unit)
