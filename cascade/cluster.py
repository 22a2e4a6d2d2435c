"""A Dask cluster for ensembles and the sweeps of ``critical``, ``redundancy`` and ``risk``
(``--workers`` / ``--scheduler``).

One :class:`SweepCluster` serves a whole command: it starts the local cluster (the one of
``cascade scenario --workers``: :func:`cascade.ensemble._local_cluster`) or connects to a
scheduler once.  Large read-only inputs (a compiled system, a prepared scenario, a sweep's start
state) go to the workers through a **worker-side store**: :meth:`SweepCluster.share` names an
object by a token (a hash of its pickle, or a token the caller gives), asks the workers which
of them already hold it, and sends it only to the others.  An object stays in the store of a
worker after the run (the last :data:`STORE_MAX` of them), so the next run on the same cluster,
from this process or another one (a second ``cascade critical --scheduler`` on the same files),
sends nothing again; a client that saw a token on every worker (it sent it, found it, or the
fork carried it) does not ask again (a worker that lost it since raises :class:`NotShared` in
its task, and gets it then).  Tasks carry tokens and element or sample ranges only.  A sweep's
start state is not sent: each worker builds it from the stored system, once (:func:`built`).
(On a local cluster, ``core_sweep`` passes its plan through shared memory instead:
:mod:`cascade.shared`, :attr:`SweepCluster.local`.)

:meth:`SweepCluster.run_ranges` cuts ``0 .. total`` into ranges while the run goes: the first
ranges are small (the first tasks time the work on the workers, nothing runs in this process),
the later ones hold about :data:`TASK_SECONDS` of work at the measured rate and shrink toward
the end so that the workers finish together, not below :data:`MIN_TASK_SECONDS` of work;
:data:`IN_FLIGHT` tasks per worker are queued so that no worker waits for a round trip.  A run
given a ``rate_key`` starts from the rate the last run with that key measured here (no small
first ranges).  A local cluster started by fork can carry objects into its workers' stores
(``SweepCluster(workers=..., carry=...)``: nothing to send).  Tasks return their rows with their position, so the
gathered answer is the one of threads, bit for bit, whatever the ranges and the order they
finish in.  A worker that joins later (a lost one replaced) gets the objects it lacks when its
first task asks for them.  Failures end the run with one line, as before.
"""
from __future__ import annotations

import hashlib
import logging
import math
import pickle
import threading
import time
import uuid
import weakref
from collections import OrderedDict

from . import ensemble as _ens
from .ensemble import CONNECT_TIMEOUT, _dask, _one_line, check_scheduler
from .errors import InputError

STORE_MAX = 6        # objects a worker keeps in its store (oldest out first)
TASK_SECONDS = 0.5   # the target duration of a task once the rate is known
MIN_TASK_SECONDS = 0.03   # the tail's ranges stop shrinking at about this much work
IN_FLIGHT = 2        # tasks queued per worker
WORKERS_EVERY = 1.0  # seconds between two looks at the scheduler's worker count in a run
RATE_WEIGHT = 0.1    # a remembered rate counts as this many seconds of measured work
_RATES: dict = {}    # rate_key -> (items, worker seconds) of the last run (this process)


# --- The worker side ---------------------------------------------------------------------------

_STORE: OrderedDict = OrderedDict()   # token -> object, in each worker process
_STORE_LOCK = threading.Lock()


class NotShared(LookupError):
    """Raised by a task on a worker whose store lacks a token (a worker that joined later, or
    an object pushed out by other runs); :meth:`SweepCluster.run_ranges` sends it and reruns."""


def _store_has(tokens) -> list:
    with _STORE_LOCK:
        return [t for t in tokens if t in _STORE]


def _store_put(token: str, obj) -> None:
    with _STORE_LOCK:
        _STORE[token] = obj
        _STORE.move_to_end(token)
        while len(_STORE) > STORE_MAX:
            _STORE.popitem(last=False)


def _store_drop(token: str) -> None:
    with _STORE_LOCK:
        _STORE.pop(token, None)


def stored(token: str):
    """The object of ``token`` in this worker's store (in a task)."""
    with _STORE_LOCK:
        try:
            obj = _STORE[token]
        except KeyError:
            raise NotShared(token) from None
        _STORE.move_to_end(token)
        return obj


_BUILD_LOCK = threading.Lock()
_BUILDING = threading.local()   # seconds this thread spent in built()'s make (see timed)


def built(token: str, make):
    """The object of ``token`` in this worker's store, else ``make()`` put there under that
    token (in a task; the threads of a worker build it once).  For objects a worker can build
    from what its store holds (a sweep's start state from the compiled system) instead of
    receiving them; ``make`` may raise :class:`NotShared`."""
    with _BUILD_LOCK:
        try:
            return stored(token)
        except NotShared:
            pass
        t = time.perf_counter()
        try:
            obj = make()
        finally:
            _BUILDING.seconds = getattr(_BUILDING, "seconds", 0.0) + time.perf_counter() - t
        _store_put(token, obj)
        return obj


def timed(fn, *args):
    """Run ``fn(*args)`` in a task: ``(seconds it took on the worker, result)``, less the
    seconds spent building objects with :func:`built` (once per worker: they would make the
    first ranges look slow, and the ranges after them too small)."""
    _BUILDING.seconds = 0.0
    t = time.perf_counter()
    out = fn(*args)
    return max(time.perf_counter() - t - _BUILDING.seconds, 1e-6), out


# --- Tokens ------------------------------------------------------------------------------------

_TOKENS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def content_token(obj, memo: bool = False) -> str:
    """A hash of ``obj``'s pickle (its arrays hashed in place, not copied).  ``memo``: keep it
    per object, for objects never changed after they are built (compiled systems)."""
    if memo:
        try:
            return _TOKENS[obj]
        except (KeyError, TypeError):
            pass
    h = hashlib.blake2b(digest_size=16)
    buffers: list = []
    h.update(pickle.dumps(obj, protocol=5, buffer_callback=buffers.append))
    for buf in buffers:
        h.update(buf.raw())
    token = f"{type(obj).__name__}-{h.hexdigest()}"
    if memo:
        try:
            _TOKENS[obj] = token
        except TypeError:
            pass
    return token


class SweepCluster:
    """A Dask client for ensembles and sweeps; use as a context manager (closes the client and
    the local cluster).

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``).
    workers : int, optional
        Start a local cluster of this many single-threaded worker processes instead.
    carry : dict, optional
        ``{token: object}`` for the stores of a local cluster's workers: when they start as
        forks of this process (:func:`cascade.ensemble.local_start_method`), the objects are
        in this process's store at the fork, so every worker starts with them and
        :meth:`share` of the same tokens sends nothing; otherwise they are sent as usual.
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 carry: dict | None = None):
        if (scheduler is None) == (workers is None):
            raise InputError("give either --workers or --scheduler")
        distributed = _dask()
        self._cluster = None
        self._shared: OrderedDict = OrderedDict()   # token -> object (to send to late workers)
        # Tokens this client has seen in every worker's store (sent, found or carried): a
        # later share of them asks nothing (a worker that lost one since raises NotShared in
        # its task, and run_ranges sends it then).
        self._held: set = set()
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
            carry = dict(carry or {}) if _ens.local_start_method() == "fork" else {}
            self._shared.update(carry)
            for token, obj in carry.items():   # copied into each worker by the fork
                _store_put(token, obj)
            self._held.update(carry)
            try:
                # Without the workers' profiler and with quieter loops (_ens.QUIET_CONFIG).
                self._cluster = _ens._local_cluster(distributed, workers)
            finally:
                for token in carry:
                    _store_drop(token)
            try:
                # Results come straight from the workers, not through the scheduler (which
                # shares the cores of this process): the local workers are always reachable.
                self.client = distributed.Client(self._cluster, set_as_default=False,
                                                 direct_to_workers=True)
            except BaseException:
                _ens.close_local_cluster(self._cluster)
                raise
            self.label = f"dask (local cluster, {workers} workers)"
            self.where = "local Dask cluster"

    @property
    def local(self) -> bool:
        """Whether the workers are processes of this machine started here (``--workers``):
        they can read this process's files in ``/dev/shm`` (:mod:`cascade.shared`)."""
        return self._cluster is not None

    @property
    def n_workers(self) -> int:
        try:
            return max(1, len(self.client.scheduler_info().get("workers", {})))
        except Exception:
            return 1

    # --- the store ---

    def share(self, obj, token: str | None = None, memo: bool = False) -> str:
        """Put ``obj`` in the store of every worker that lacks it; return its token (pass it
        to tasks, which read it with :func:`stored`).  ``token``: the caller's name for it
        (else a hash of its content, see :func:`content_token`; ``memo``: kept per object)."""
        return self.share_all([obj], [token], memo)[0]

    def share_all(self, objs, tokens=None, memo=False) -> list:
        """:meth:`share` of several objects in one round trip; ``tokens`` and ``memo`` are
        lists (or one value for all)."""
        tokens = list(tokens) if tokens is not None else [None] * len(objs)
        memo = list(memo) if isinstance(memo, (list, tuple)) else [memo] * len(objs)
        out = []
        for obj, token, keep in zip(objs, tokens, memo):
            token = token or content_token(obj, keep)
            if token in self._shared:
                self._shared.move_to_end(token)
            else:
                self._shared[token] = obj
                while len(self._shared) > STORE_MAX:
                    self._shared.popitem(last=False)
            out.append(token)
        self._send(out)
        return out

    def _send(self, tokens) -> None:
        """Send the objects of ``tokens`` to the workers that do not hold them (one round
        trip to ask them, none for tokens this client already saw on every worker)."""
        tokens = [t for t in dict.fromkeys(tokens) if t not in self._held]
        if not tokens:
            return
        have = self.client.run(_store_has, tokens)
        for token in tokens:
            missing = [w for w, held in have.items() if token not in held]
            if missing and token in self._shared:
                self.client.run(_store_put, token, self._shared[token], workers=missing)
                missing = []
            if not missing and have:
                self._held.add(token)

    def forget(self, token: str) -> None:
        """Drop ``token`` from the workers' stores (a sweep's start state, once it is done)."""
        self._shared.pop(token, None)
        self._held.discard(token)
        try:
            self.client.run(_store_drop, token)
        except Exception:   # a worker gone: its store is gone with it
            pass

    # --- running ---

    def run_ranges(self, fn, make_args, total: int, collect, bar=None, *, first: int = 1,
                   minimum: int = 1, size: int | None = None, unit: str = "items",
                   name: str | None = None, rate_key=None) -> None:
        """Run ``fn(*make_args(lo, hi))`` on the workers for consecutive ranges covering
        ``0 .. total`` and ``collect`` each result as it arrives (``collect`` returns how many
        items it held, for ``bar``).  ``fn`` must read shared objects with :func:`stored`.

        ``size``: every range holds ``size`` items (the last one the rest).  Otherwise the
        first ranges hold ``first`` items, the later ones about :data:`TASK_SECONDS` of work
        at the rate the finished tasks measured on their workers, at most the rest over
        ``IN_FLIGHT`` × workers (the tail shrinks), never below ``minimum``.  ``unit`` names
        the items in errors, ``name`` prefixes the tasks' keys (default: ``fn``'s name).
        The tail's ranges stop shrinking at about :data:`MIN_TASK_SECONDS` of work (a task
        costs a round trip and its set-up on the worker whatever its size), or at ``total``
        over ``IN_FLIGHT`` × workers when that is less.

        ``rate_key`` (hashable, e.g. the tokens of the shared inputs): the rate this run
        measures is kept in this process under that key, and the next run with the same key
        starts from it (weighted as :data:`RATE_WEIGHT` seconds of work, the new tasks'
        timings take over): no small first ranges, the items split evenly from the start.
        """
        import queue

        client = self.client
        arrived: queue.Queue = queue.Queue()   # futures as they finish (their done-callbacks)
        todo: list = []            # ranges to (re)run first
        busy: dict = {}            # future -> (lo, hi)
        state = dict(next=0, done=0, seconds=0.0, timed=0, workers=1, looked=-math.inf)
        if rate_key is not None and rate_key in _RATES:
            items, seconds = _RATES[rate_key]
            state["timed"], state["seconds"] = items * RATE_WEIGHT / seconds, RATE_WEIGHT
        idle_since = None
        name = name or getattr(fn, "__name__", "task")

        def n_workers() -> int:
            # A round trip to the scheduler: at most once per WORKERS_EVERY seconds, not after
            # every finished task (a worker that joins or leaves is seen within that time).
            now = time.monotonic()
            if now - state["looked"] >= WORKERS_EVERY:
                state["workers"], state["looked"] = self.n_workers, now
            return state["workers"]

        def next_range(workers: int):
            if todo:
                return todo.pop()
            lo = state["next"]
            if lo >= total:
                return None
            if size:
                state["next"] = hi = min(total, lo + size)
                return lo, hi
            floor = max(1, minimum)
            if state["timed"] == 0:
                n = first
            else:
                rate = state["timed"] / max(state["seconds"], 1e-9)
                # Not above an even split of the whole run (a short run still uses every worker).
                floor = max(floor, min(int(rate * MIN_TASK_SECONDS),
                                       math.ceil(total / (IN_FLIGHT * workers))))
                n = min(int(rate * TASK_SECONDS),
                        math.ceil((total - lo) / (IN_FLIGHT * workers)))
            n = max(floor, n)
            hi = min(total, lo + n)
            if total - hi < floor:   # no sliver at the end
                hi = total
            state["next"] = hi
            return lo, hi

        def submit():
            if not todo and state["next"] >= total:
                return
            workers = n_workers()
            while len(busy) < IN_FLIGHT * workers:
                span = next_range(workers)
                if span is None:
                    return
                future = client.submit(timed, fn, *make_args(*span), pure=False,
                                       key=f"{name}-{uuid.uuid4().hex}")
                busy[future] = span
                future.add_done_callback(arrived.put)

        def fail(message: str):
            return InputError(f"the Dask run failed with {state['done']} of {total} {unit} done: "
                              f"{message}; nothing written", self.where)

        try:
            submit()
            while busy:
                try:
                    finished = [arrived.get(timeout=1)]
                    while not arrived.empty():
                        finished.append(arrived.get_nowait())
                except queue.Empty:
                    finished = []
                progressed = False
                for future in finished:
                    span = busy.pop(future, None)
                    if span is None:   # cancelled by us, or reported twice
                        continue
                    if future.status == "error":
                        exc = future.exception()
                        if isinstance(exc, NotShared):   # a worker without the inputs: send, rerun
                            self._held.clear()   # ask the workers again
                            try:
                                self._send(list(self._shared))
                            except Exception as err:
                                raise fail(_one_line(err)) from None
                            todo.append(span)
                            continue
                        raise fail(_one_line(exc))
                    if future.status == "cancelled":
                        try:
                            future.result()
                        except BaseException as exc:  # its reason, e.g. lost dependencies
                            raise fail(_one_line(exc)) from None
                        raise fail("cancelled")
                    got = self._fetch(future)
                    if got is None:   # its worker died since: Dask reruns it, wait again
                        busy[future] = span
                        future.add_done_callback(arrived.put)
                        continue
                    seconds, result = got
                    n = collect(result)
                    progressed = True
                    state["done"] += n
                    state["seconds"] += seconds
                    state["timed"] += span[1] - span[0]
                    if bar is not None:
                        bar.update(n)
                submit()
                if progressed:
                    idle_since = None
                    continue
                if not self._no_workers():
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > _ens.NO_WORKERS_GRACE:
                    grace = _ens.NO_WORKERS_GRACE
                    raise InputError(f"the Dask cluster has had no workers for {grace:g} s with "
                                     f"{total - state['done']} of {total} {unit} unfinished; "
                                     "nothing written", self.where)
        except BaseException:
            if busy:
                try:
                    client.cancel(list(busy))
                except Exception:
                    pass
            raise
        if rate_key is not None and state["seconds"] > 0:
            _RATES[rate_key] = (state["timed"], state["seconds"])

    def _fetch(self, future):
        """The result of a finished task, or None when it is gone with its worker (the
        scheduler has no workers left while we wait for it)."""
        while future.status == "finished":
            try:
                return future.result(timeout=2)
            except TimeoutError:
                if self._no_workers():
                    return None
        return None

    def _no_workers(self) -> bool:
        try:
            return not self.client.scheduler_info().get("workers", {})
        except Exception:  # the scheduler itself is gone
            return True

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
                    _ens.close_local_cluster(self._cluster)
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
