"""A Dask cluster for the sweeps of ``critical`` and ``redundancy`` (``--workers`` /
``--scheduler``).

One :class:`SweepCluster` serves a whole command: it starts the local cluster (the one of
``cascade scenario --workers``: :func:`cascade.ensemble._local_cluster`) or connects to a
scheduler once, scatters each compiled system (and each sweep's start state) to every worker
once, and sends tasks that carry only element or sample ranges.  Tasks return their rows with
their position, so the gathered answer is the one of threads, bit for bit, whatever order the
tasks finish in.  Failures end the run with one line (:func:`cascade.ensemble._gather`).
"""
from __future__ import annotations

import logging

from .ensemble import CONNECT_TIMEOUT, _dask, _gather, _local_cluster, _one_line, check_scheduler
from .errors import InputError

SCATTERED_MAX = 4   # objects kept on the workers at once (systems of measure sets, sweep states)


class SweepCluster:
    """A Dask client for sweeps; use as a context manager (closes the client and cluster).

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``).
    workers : int, optional
        Start a local cluster of this many single-threaded worker processes instead.
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None):
        if (scheduler is None) == (workers is None):
            raise InputError("give either --workers or --scheduler")
        distributed = _dask()
        self._cluster = None
        self._scattered: dict = {}
        if scheduler is not None:
            scheduler = check_scheduler(scheduler)
            try:
                self.client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {_one_line(exc)}",
                                 "--scheduler") from None
            self.label = f"dask ({scheduler})"
            self.where = scheduler
        else:
            self._cluster = _local_cluster(distributed, workers)
            self.client = distributed.Client(self._cluster, set_as_default=False)
            self.label = f"dask (local cluster, {workers} workers)"
            self.where = "local Dask cluster"

    @property
    def n_workers(self) -> int:
        try:
            return max(1, len(self.client.scheduler_info().get("workers", {})))
        except Exception:
            return 1

    def scatter(self, obj):
        """A future of ``obj`` on every worker, sent once per object (kept alive here)."""
        key = id(obj)
        if key not in self._scattered:
            while len(self._scattered) >= SCATTERED_MAX:   # oldest first (runs are sequential)
                self._scattered.pop(next(iter(self._scattered)))[1].release()
            self._scattered[key] = (obj, self.client.scatter(obj, broadcast=True))
        return self._scattered[key][1]

    def forget(self, obj) -> None:
        """Release the workers' copy of ``obj`` (a sweep's start state, once it is done)."""
        entry = self._scattered.pop(id(obj), None)
        if entry is not None:
            entry[1].release()

    def run(self, fn, tasks, collect, bar=None) -> None:
        """Submit ``fn(*task)`` for each task and ``collect`` every result as it arrives
        (``collect`` returns how many items the result held, for ``bar``)."""
        futures = [self.client.submit(fn, *task, pure=False) for task in tasks]
        try:
            _gather(self.client, futures, collect, bar, self.where)
        except BaseException:
            self.client.cancel(futures)
            raise

    def close(self) -> None:
        log = logging.getLogger("distributed")
        level = log.level
        # The teardown's complaints about cancelled tasks and closed connections (after
        # Ctrl-C, or a lost cluster) are noise next to the one line the user gets.
        log.setLevel(logging.CRITICAL + 1)
        try:
            try:
                self.client.close()
            finally:
                if self._cluster is not None:
                    self._cluster.close()
        except Exception:  # already shutting down (Ctrl-C); the run's own error matters
            pass
        finally:
            log.setLevel(level)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def open_cluster(scheduler: str | None, workers: int | None) -> SweepCluster | None:
    """A :class:`SweepCluster` when ``--workers`` or ``--scheduler`` is given, else ``None``."""
    if scheduler is None and workers is None:
        return None
    if scheduler is not None and workers is not None:
        raise InputError("give either --workers or --scheduler, not both")
    return SweepCluster(scheduler, workers)
