"""Repair scheduling after a disaster: backups in time, crews, service curves, strategies.

Time model
----------
Time runs in hours from the event (t = 0).  The elements (nodes and edges) failed by the
hazard are *damaged*: they stay failed until a crew repairs them.  Every other node works or
not by the static cascade of docs/format.md, computed by the core's fixpoint
(:meth:`cascade.compiled.Workspace.run`) on the damaged set at each event; nothing else is
repaired (a node that merely lost its supply comes back with its supply).

A dependency group's ``delay`` is a backup (generator, battery, tank): while the group has
no working supplier its backup runs, and the group is *held* (``Workspace.group_held``), so
it does not fail its dependent.  The backup drains only while the group has no working
supplier and its dependent is not itself damaged (a destroyed site draws nothing), and it
does not refill during the recovery (a conservative reading for fuel and batteries), so a
group that loses its suppliers twice has ``delay`` hours in total.  When it
is empty the group is released and the cascade runs again.  Groups that have no working
supplier even before the event start with an empty backup (the steady state).

Crews belong to a layer (a power crew repairs power nodes and lines); each repairs one
element at a time, without pre-emption, and never idles while its layer has an element
waiting.  An edge belongs to the layer of its ends.

Service and metrics
-------------------
``Q(t)`` is the service of all layers together, weighted by the layers' weights
(``system.toml``, default 1): the sum over layers of weight times the layer's service
(the served fraction of its demand, or of its nodes where it has no demand), over the sum
of the weights.  Demands of different layers are never added (they have their own units);
this is one minus the score of :mod:`cascade.units` over the sum of the weights.  Per layer
it is docs/format.md's service.  ``Q`` is a step function
of time.  With ``Q0`` the pre-event service (1 when the intact system serves everything):
resilience loss ``R = integral of (Q0 - Q(t)) dt`` from the event until ``Q`` is back at
``Q0`` for good, in hours (Bruneau et al., Earthquake Spectra 19, 733, 2003, with ``Q`` as a
fraction); ``time_to_90`` and ``restoration_time`` are the first times after which ``Q``
stays at least ``0.9 Q0`` and ``Q0``; ``peak_loss`` is the largest ``Q0 - Q(t)``.

Strategies
----------
* ``greedy``: when a crew is free, it takes the waiting element of its layer that brings
  back the most demand per repair hour, counting what the cascade unblocks, given that the
  repairs already under way are done (the usual heuristic of restoration studies, see
  González et al., Computer-Aided Civil and Infrastructure Engineering 31, 334, 2016).  Ties
  (often: no single repair brings anything back) go to the larger static criticality per
  hour, then to the order of the failure list.  The choices are those of scoring every
  candidate with a fixpoint, at a fraction of the cost: bounds, kept gains and closed-form
  road gains (see :class:`_Greedy`).
* ``critical``: a fixed order by static criticality, the score lost when the element alone
  fails (``score`` of :func:`cascade.criticality.sweep`: weighted lost fractions of the
  layers' demands, computed for the failed elements only), then the shorter repair, then the order of the failure list.
* ``random``: a seeded random order.
* ``optimal``: the smallest resilience loss over every repair order (per layer), by branch
  and bound over the crews' choices.  Exact among schedules in which no crew idles while
  its layer has work waiting (idling never helps when service only grows with repairs,
  which holds for ``source`` and ``none`` layers).  Refused above :data:`OPTIMAL_MAX_ORDERS`.
* ``milp``: a time-indexed mixed-integer program solved with HiGHS (:mod:`cascade.milp`),
  warm-started from greedy; its order is replayed by this event loop.

Flow layers
-----------
With ``flow`` or ``dcflow`` layers (:class:`FlowWorkspace`), Q counts served amounts: a node
weighs its served fraction, so partial service shows in the curve.  Each event reruns the flow
cascade from the damaged set with every undamaged branch closed (a branch tripped on overload is
re-closed by the operators at the next event and trips again only if the new flows overload
it).  Served amounts are not monotone in repairs, so ``greedy`` evaluates every candidate with a
cascade (no bounds, no kept gains), and ``optimal`` cuts on the loss so far only when Q0 = 1.
``milp`` adds flow variables (:mod:`cascade.milp`); its replay stands only when no worse than
greedy's.

Shared crews and roads
----------------------
Crews of the pool (``crews={"pool": N}``, :data:`POOL`; crew layer -1) take work of any
layer, after the layer's own crews.  With depots (:mod:`cascade.travel`) a crew drives from
its base or last job over the undamaged roads; the repair starts on arrival, and a crew only
takes an element it can reach now.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np
import pandas as pd

from .compiled import CompiledSystem, Workspace, compile_system
from .errors import InputError
from .progress import ProgressArg, Tracker, tracker
from .system import InfrastructureSystem
from .units import node_weights

STRATEGIES = ("greedy", "critical", "random", "optimal", "milp")
#: The name of the shared crews in ``--crews``: ``pool=6`` (any crew repairs any layer).
POOL = "pool"

#: Repair hours by node ``kind`` where ``repair_time`` is empty (orders of magnitude after the
#: restoration curves of FEMA HAZUS: plants take days, a bridge a week, a service point hours).
NODE_REPAIR_HOURS = {
    "source": 72.0, "substation": 24.0, "distribution": 12.0, "feeder": 6.0, "consumer": 4.0,
    "pump": 12.0, "tank": 24.0, "main": 8.0, "regulator": 12.0, "intersection": 4.0,
    "bridge": 168.0, "aggregation": 12.0, "cell": 6.0, "scada": 6.0,
}
#: Repair hours of a node whose kind is not listed above.
NODE_REPAIR_DEFAULT = 12.0
#: Repair hours by edge ``kind`` where ``repair_time`` is empty.
EDGE_REPAIR_HOURS = {"line": 6.0, "pipe": 12.0, "road": 8.0, "fibre": 6.0, "fiber": 6.0}
#: Repair hours of an edge whose kind is not listed above.
EDGE_REPAIR_DEFAULT = 8.0
#: ``optimal`` is refused when the number of per-layer repair orders (the product over layers
#: of k_L!, k_L failed elements in layer L) is larger than this (8!: 8 elements in one layer).
OPTIMAL_MAX_ORDERS = 40320

_EPS = 1e-9


# --------------------------------------------------------------------------- crews
def parse_crews(text: str) -> int | dict[str, int]:
    """Parse ``--crews``: ``"3"`` (three crews in every layer), ``"power=3,water=2"``, or with a
    shared pool ``"pool=6"`` / ``"power=2,pool=3"`` (:data:`POOL`).

    Raises
    ------
    InputError
        On anything else, or a count that is not a whole number >= 1.
    """
    text = str(text).strip()

    def count(value: str, what: str) -> int:
        try:
            n = int(value.strip())
        except ValueError:
            raise InputError(f"--crews: '{value.strip()}' is not a whole number{what}") from None
        if n < 1:
            raise InputError(f"--crews: need at least one crew{what}, not {n}")
        return n

    if "=" not in text:
        return count(text, "")
    out: dict[str, int] = {}
    for part in text.split(","):
        if part.count("=") != 1 or not part.split("=")[0].strip():
            raise InputError(f"--crews: expected LAYER=N, not '{part.strip()}' (e.g. power=3,water=2)")
        layer, value = (s.strip() for s in part.split("="))
        if layer in out:
            raise InputError(f"--crews: layer '{layer}' given twice")
        out[layer] = count(value, f" for '{layer}'" if layer == POOL else f" for layer '{layer}'")
    return out


def crews_per_layer(compiled: CompiledSystem, crews: int | Mapping[str, int] = 1) -> dict[str, int]:
    """Crews of every layer: a number is that many crews in each layer; a mapping names
    some layers and the others get one crew.  Unknown layers raise :class:`InputError`.

    A mapping with the key :data:`POOL` adds that many shared crews (any crew repairs any
    layer); then the layers not named get no crew of their own, and the result holds the
    ``pool`` entry after the layers.
    """
    if isinstance(crews, Mapping):
        crews = dict(crews)
        has_pool = POOL in crews
        pool = crews.pop(POOL, 0)
        if has_pool and (isinstance(pool, bool) or int(pool) != pool or pool < 1):
            raise InputError(f"--crews: need at least one crew for '{POOL}', not {pool}")
        out = {name: 0 if pool else 1 for name in compiled.layer_names}
        for layer, n in crews.items():
            if layer not in out:
                raise InputError(f"--crews: unknown layer '{layer}' (layers: "
                                 f"{', '.join(compiled.layer_names)})")
            if int(n) != n or n < 1:
                raise InputError(f"--crews: need at least one crew for layer '{layer}', not {n}")
            out[layer] = int(n)
        if pool:
            out[POOL] = int(pool)
        return out
    if isinstance(crews, bool) or int(crews) != crews or crews < 1:
        raise InputError(f"--crews: need at least one crew, not {crews}")
    return {name: int(crews) for name in compiled.layer_names}


# --------------------------------------------------------------------------- result
@dataclass
class RecoveryResult:
    """The outcome of one recovery.

    Attributes
    ----------
    strategy : str
    crews : dict of str to int
        Crews per layer.
    curve : pandas.DataFrame
        Step function of service: ``time`` (hours), ``service`` (all layers), one column per
        layer; each row holds from its time until the next row's.
    schedule : pandas.DataFrame
        One row per repair in the order crews took them (so by start time): ``id``, ``crew``, ``start``, ``finish``,
        ``layer``, ``repair_cost``.
    metrics : dict
        ``resilience_loss`` (hours), ``restoration_time``, ``time_to_90`` (hours),
        ``peak_loss`` (fraction), plus ``baseline_service`` (Q0), ``repairs_done`` (last
        finish) and ``repair_cost`` (total).
    """

    strategy: str
    crews: dict
    curve: pd.DataFrame
    schedule: pd.DataFrame
    metrics: dict = field(default_factory=dict)
    #: ``milp`` only: the solver's report (:func:`cascade.milp.solve`): objective, bound, gap,
    #: status, solve time, period, horizon, sizes.
    solver: dict | None = None

    def to_dict(self) -> dict:
        """The JSON of ``cascade recover`` for one strategy."""
        m = self.metrics

        def num(x):      # never back to service (not expected: repairs restore Q0) -> null
            return float(x) if math.isfinite(x) else None

        def row(r) -> dict:
            out = {"id": str(r["id"]), "crew": str(r["crew"]) or None, "start": num(r["start"]),
                   "finish": num(r["finish"])}
            if "travel" in r:       # crews on roads: the leg before the repair
                out.update({"from": str(r["from"]) or None, "depart": num(r["depart"]),
                            "travel": num(r["travel"])})
            return out

        out = {
            "strategy": self.strategy, "crews": dict(self.crews),
            "resilience_loss": num(m["resilience_loss"]),
            "restoration_time": num(m["restoration_time"]),
            "time_to_90": num(m["time_to_90"]), "peak_loss": float(m["peak_loss"]),
            "schedule": [row(r) for r in self.schedule.to_dict("records")],
            "curve": [[float(t), float(q)] for t, q in zip(self.curve["time"], self.curve["service"])],
        }
        if self.solver is not None:
            out["milp"] = {k: (num(v) if isinstance(v, float) else v) for k, v in self.solver.items()}
        return out


def curve_metrics(time: np.ndarray, service: np.ndarray, baseline: float) -> dict:
    """Metrics of a step curve (``service[i]`` holds on ``[time[i], time[i+1])``, the last
    value for ever).

    Parameters
    ----------
    time, service : ndarray of float64, shape (p,)
    baseline : float
        Pre-event service Q0.

    Returns
    -------
    dict with ``resilience_loss``, ``restoration_time``, ``time_to_90``, ``peak_loss``.
    """
    time = np.asarray(time, float)
    service = np.asarray(service, float)
    tol = 1e-9 * max(1.0, abs(baseline))
    loss = baseline - service
    loss[np.abs(loss) <= tol] = 0.0
    widths = np.diff(time)

    def settled(level: float) -> tuple[float, int]:
        """First time after which service stays >= level, and the segments before it."""
        below = np.flatnonzero(service < level - tol)
        if below.size == 0:
            return 0.0, 0
        last = int(below[-1])
        return (float(time[last + 1]), last + 1) if last + 1 < len(time) else (math.inf, len(time))

    restored, segments = settled(baseline)
    resilience = float(np.sum(loss[:segments] * widths[:segments])) if math.isfinite(restored) \
        else math.inf
    return {"resilience_loss": resilience, "restoration_time": restored,
            "time_to_90": settled(0.9 * baseline)[0],
            "peak_loss": float(max(loss.max(initial=0.0), 0.0))}


# --------------------------------------------------------------------------- problem
class _Problem:
    """Arrays shared by every strategy of one recovery: the failed elements, their repair
    times, the crews, the weights of Q and the workspaces (allocated once)."""

    def __init__(self, system: InfrastructureSystem, compiled: CompiledSystem, failed_ids,
                 crews):
        c = self.compiled = compiled
        ids = [str(x) for x in failed_ids]
        nodes, edges = c.split_ids(ids)            # unknown ids raise InputError
        self.node_idx = nodes.astype(np.int64)
        self.edge_idx = edges.astype(np.int64)
        k_nodes = len(nodes)
        self.k = k_nodes + len(edges)
        self.is_node = np.zeros(self.k, bool)
        self.is_node[:k_nodes] = True
        self.elem = np.concatenate([self.node_idx, self.edge_idx])   # node or edge index
        self.ids = np.concatenate([c.node_ids[self.node_idx], c.edge_ids[self.edge_idx]]).astype(object)
        self.layer = np.concatenate([c.node_layer[self.node_idx],
                                     c.node_layer[c.edge_src[self.edge_idx]]]).astype(np.int64)
        self.repair_time, self.repair_cost = _repair_columns(system, self)
        # The position of each element in the failure list, for stable tie-breaking.
        position = {name: i for i, name in reversed(list(enumerate(ids)))}
        self.rank = np.array([position.get(str(x), i) for i, x in enumerate(self.ids)], np.int64)

        self.crews = crews_per_layer(c, crews)
        names, layers = [], []
        failed_in = np.bincount(self.layer, minlength=len(c.layer_names))
        for li, name in enumerate(c.layer_names):
            # A crew beyond one per failed element never works: 10**20 crews is not 10**20 slots.
            for j in range(min(self.crews[name], max(1, int(failed_in[li])))):
                names.append(f"{name}-{j + 1}")
                layers.append(li)
        # Shared crews come after the layers' own (layer -1: any layer).
        for j in range(self.crews.get(POOL, 0)):
            names.append(f"{POOL}-{j + 1}")
            layers.append(-1)
        self.crew_names = np.array(names, dtype=object)
        self.crew_layer = np.array(layers, np.int64)

        n_layers = len(c.layer_names)
        self.layer_nodes = np.bincount(c.node_layer, minlength=n_layers).astype(float)
        self.layer_demand = np.bincount(c.node_layer, weights=c.demand, minlength=n_layers)
        # Q's weights: each node's share of the score (cascade.units): the layer's weight times
        # its share of the layer's demand (of its nodes without demand).  No raw demands added.
        self.weight = node_weights(system, c)
        self.score_weight = self.weight
        if not self.weight.sum() > 0:   # every weight 0: count the layers equally
            self.weight = node_weights(replace(system, weights={}), c)
        self.layer_weight = np.where(self.layer_demand[c.node_layer] > 0, c.demand, 1.0)
        self.layer_total = np.bincount(c.node_layer, weights=self.layer_weight, minlength=n_layers)
        self.total = float(self.weight.sum())

        #: Flow layers (``flow``, ``dcflow``): Q counts served fractions (:class:`FlowWorkspace`).
        self.flow = bool(c.has_flow_layers)
        self.ws = workspace(c)
        self.ws.run()
        self.baseline_served = self.served(self.share(self.ws))
        self.q0 = self.baseline_served / self.total if self.total > 0 else 1.0
        self.q0_layers = self.layer_service(self.share(self.ws))
        # Backups of groups without a working supplier even before the event are spent.
        self.remaining0 = c.group_delay.astype(np.float64).copy()
        self.remaining0[self.ws.alive == 0] = 0.0
        # The failed element that owns each group (-1: its dependent is not a failed node).
        elem_of_node = np.full(c.n_nodes, -1, np.int64)
        elem_of_node[self.node_idx] = np.arange(k_nodes)
        self.group_elem = elem_of_node[c.group_owner]
        self._critical = None
        self.roads = None          # cascade.travel.Roads when crews drive (set by recover)

    def share(self, ws) -> np.ndarray:
        """Each node's served share after the last run of ``ws``: working (0/1) in a v1
        system, the served fraction (0 for a node that stopped) with flow layers."""
        return ws.share if self.flow else ws.working

    def served(self, working: np.ndarray) -> float:
        """Q's numerator for a served share per node (:meth:`share`)."""
        return float(self.weight @ working)

    def layer_service(self, working: np.ndarray) -> np.ndarray:
        served = np.bincount(self.compiled.node_layer, weights=self.layer_weight * working,
                             minlength=len(self.compiled.layer_names))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.layer_total > 0, served / np.where(self.layer_total > 0,
                                                                     self.layer_total, 1), np.nan)

    def run_waiting(self, ws: Workspace, waiting: np.ndarray) -> None:
        """Fixpoint with the elements of the boolean mask ``waiting`` (k,) still damaged."""
        ws.run(self.elem[waiting & self.is_node], self.elem[waiting & ~self.is_node])

    def criticality(self) -> np.ndarray:
        """Static criticality, shape (k,): the score lost (weighted lost fractions of the
        layers' demands) when the element alone fails, delays exhausted.

        The quantity of ``score`` in :func:`cascade.criticality.sweep` (the tests hold them
        equal), computed here for the failed elements only: one fresh core fixpoint each, on
        a workspace of its own.
        """
        if self._critical is None:
            ws = workspace(self.compiled)
            weight = self.score_weight
            ws.run()
            before = ws.working.astype(bool)
            share_before = ws.share.copy() if self.flow else None
            out = np.zeros(self.k)
            one = np.zeros(self.k, bool)
            for i in range(self.k):
                one[i] = True
                self.run_waiting(ws, one)
                one[i] = False
                if self.flow:       # served amounts lost (cascade.criticality.flow_sweep)
                    out[i] = float(weight @ (share_before - ws.share))
                    continue
                # Lost: worked before and not after (a giant that moves gains nothing back).
                out[i] = float(weight[before & (ws.working == 0)].sum())
            self._critical = out
        return self._critical


class FlowWorkspace:
    """The recovery's view of a system with flow layers: :class:`cascade.compiled.Workspace`'s
    attributes that the event loop reads, filled by the flow engine (:mod:`cascade.flowcore`).

    After :meth:`run`: ``working`` (uint8, n), ``share`` (float64, n: each node's served
    fraction, 0 for a node that stopped; 1 for a working node of a v1 layer), ``alive``
    (int64, per group: suppliers that count, i.e. work at a served fraction at least the
    row's threshold) and ``trips`` (the branches tripped on overload in this run).
    ``group_held`` (uint8, per group) is read by :meth:`run`: the groups whose backup runs.

    Every run is the static cascade of docs/format.md (v2) from the given damaged set with
    **every undamaged branch closed**: a branch tripped on overload at one event is re-closed
    by the operators at the next (after each repair or backup running out), and trips again
    only if the flows of the new state overload it.
    """

    def __init__(self, compiled: CompiledSystem):
        from .flowcore import flow_engine

        c = self.compiled = compiled
        self.engine = flow_engine(c)
        n, G = c.n_nodes, c.n_groups
        self.working = np.ones(n, np.uint8)
        self.share = np.ones(n)
        self.alive = np.diff(np.asarray(c.sup_ptr, np.int64))
        self.group_held = np.zeros(G, np.uint8)
        self.trips = None

    def run(self, init_nodes=(), init_edges=()) -> None:
        held = self.group_held.astype(bool) if self.group_held.any() else None
        working, *_, served, _flows, trips, _via = self.engine.run(init_nodes, init_edges, held=held)
        self.working[:] = working
        self.share[:] = np.where(working, served, 0.0)
        counting = self.engine._counting(working.astype(bool), served)
        self.alive[:] = np.bincount(self.engine.entry_group, weights=counting,
                                    minlength=self.compiled.n_groups).astype(np.int64)
        self.trips = trips


def workspace(compiled: CompiledSystem):
    """A v1 :class:`cascade.compiled.Workspace`, or a :class:`FlowWorkspace` when the system
    has flow layers."""
    return FlowWorkspace(compiled) if compiled.has_flow_layers else Workspace(compiled)


def _repair_columns(system: InfrastructureSystem, p: _Problem) -> tuple[np.ndarray, np.ndarray]:
    """Repair hours and costs of the failed elements (defaults by kind where empty)."""
    nodes, edges = system.nodes, system.edges

    def column(table, name, rows):
        if name in table.columns:
            return pd.to_numeric(table[name], errors="coerce").to_numpy(float)[rows]
        return np.full(len(rows), np.nan)

    def kinds(table, rows):
        if "kind" in table.columns:
            return table["kind"].astype(str).str.strip().to_numpy(object)[rows]
        return np.full(len(rows), "", object)

    n_rows, e_rows = p.node_idx, p.edge_idx
    time = np.concatenate([column(nodes, "repair_time", n_rows), column(edges, "repair_time", e_rows)])
    cost = np.concatenate([column(nodes, "repair_cost", n_rows), column(edges, "repair_cost", e_rows)])
    default = np.array([NODE_REPAIR_HOURS.get(k, NODE_REPAIR_DEFAULT) for k in kinds(nodes, n_rows)]
                       + [EDGE_REPAIR_HOURS.get(k, EDGE_REPAIR_DEFAULT) for k in kinds(edges, e_rows)],
                       dtype=float)
    time = np.where(np.isnan(time), default, time)
    cost = np.where(np.isnan(cost), 0.0, cost)
    return time, cost


# --------------------------------------------------------------------------- event loop
class _Run:
    """One recovery in progress: the event loop.

    Per element: ``status`` 0 waiting, 1 under repair, 2 repaired.  :meth:`settle` runs the
    core's fixpoint for the current damaged set and backups; :meth:`advance` moves to the
    next event (a repair finishes or a backup runs out).  The workspace is reused: nothing is
    copied per event.
    """

    def __init__(self, p: _Problem, record: bool = True):
        self.p = p
        self.record = record
        self.t = 0.0
        self.status = np.zeros(p.k, np.int8)
        self.crew_elem = np.full(len(p.crew_layer), -1, np.int64)
        self.crew_finish = np.full(len(p.crew_layer), math.inf)
        self.remaining = p.remaining0.copy()
        self.loss = 0.0
        self.start = np.full(p.k, math.nan)
        self.finish = np.full(p.k, math.nan)
        self.crew_of = np.full(p.k, -1, np.int64)
        self.seq = np.full(p.k, -1, np.int64)        # order in which crews took the elements
        self.n_assigned = 0
        # Crews on roads: where each crew is, and each repair's trip.
        self.crew_pos = p.roads.base.copy() if p.roads is not None else np.zeros(0, np.int64)
        self.travel = np.full(p.k, math.nan)
        self.depart = np.full(p.k, math.nan)
        self.origin = np.full(p.k, -1, np.int64)
        self.q = p.q0
        self.draining = np.zeros(0, np.int64)
        self.curve_t: list[float] = []
        self.curve_q: list[float] = []
        self.curve_layers: list[np.ndarray] = []

    def settle(self) -> None:
        p, ws = self.p, self.p.ws
        np.greater(self.remaining, 0.0, out=ws.group_held, casting="unsafe")
        p.run_waiting(ws, self.status < 2)
        self.q = p.served(p.share(ws)) / p.total if p.total > 0 else 1.0
        # Backups that run now: held groups without a working supplier whose dependent is
        # not damaged itself.
        owner_damaged = p.group_elem >= 0
        owner_damaged[owner_damaged] = self.status[p.group_elem[owner_damaged]] < 2
        self.draining = np.flatnonzero((ws.alive == 0) & (self.remaining > 0) & ~owner_damaged)
        if self.record:
            layers = p.layer_service(p.share(ws))
            if self.curve_t and self.curve_t[-1] >= self.t - _EPS:
                self.curve_t.pop(), self.curve_q.pop(), self.curve_layers.pop()
            if self.curve_t and self.curve_q[-1] == self.q and np.array_equal(
                    self.curve_layers[-1], layers, equal_nan=True):
                return
            self.curve_t.append(self.t)
            self.curve_q.append(self.q)
            self.curve_layers.append(layers)

    def pending_crew(self) -> int:
        """The first free crew (in layer-name order) whose layer has an element waiting, or -1."""
        free = np.flatnonzero(self.crew_elem < 0)
        if free.size == 0:
            return -1
        waiting_layers = self.p.layer[self.status == 0]
        for c in free:
            layer = self.p.crew_layer[c]
            if (waiting_layers.size if layer < 0 else np.any(waiting_layers == layer)) and (
                    self.p.roads is None or self.candidates(int(c)).size):
                return int(c)
        return -1

    def waiting_in(self, layer: int) -> np.ndarray:
        """Waiting elements of a layer (all layers for a pool crew, layer -1)."""
        if layer < 0:
            return np.flatnonzero(self.status == 0)
        return np.flatnonzero((self.status == 0) & (self.p.layer == layer))

    def candidates(self, crew: int) -> np.ndarray:
        """The waiting elements crew ``crew`` may take: of its layer (any for a pool crew)
        and, with roads, reachable from where it is over open roads."""
        cand = self.waiting_in(int(self.p.crew_layer[crew]))
        if self.p.roads is None or not cand.size:
            return cand
        hours, _ = self.trip(crew, cand)
        return cand[np.isfinite(hours)]

    def trip(self, crew: int, elems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Travel hours of ``crew`` from where it is to each element, and the node reached."""
        roads = self.p.roads
        return roads.travel(roads.distances(self.status, int(self.crew_pos[crew])), elems)

    def assign(self, crew: int, e: int) -> None:
        travel = 0.0
        if self.p.roads is not None:
            hours, node = self.trip(crew, np.array([e]))
            travel = float(hours[0])
            self.origin[e] = self.crew_pos[crew]
            self.crew_pos[crew] = node[0]
        self.travel[e] = travel
        self.status[e] = 1
        self.crew_elem[crew] = e
        self.crew_finish[crew] = self.t + travel + self.p.repair_time[e]
        self.depart[e] = self.t
        self.start[e] = self.t + travel
        self.crew_of[e] = crew
        self.seq[e] = self.n_assigned
        self.n_assigned += 1

    def advance(self) -> bool:
        """Go to the next event; False when nothing is left to happen."""
        t_repair = self.crew_finish.min(initial=math.inf)
        t_backup = self.t + self.remaining[self.draining].min() if self.draining.size else math.inf
        t_next = min(t_repair, t_backup)
        if not math.isfinite(t_next):
            return False
        dt = t_next - self.t
        self.loss += (self.p.q0 - self.q) * dt
        if self.draining.size:
            left = self.remaining[self.draining] - dt
            left[left <= _EPS] = 0.0
            self.remaining[self.draining] = left
        self.t = t_next
        for c in np.flatnonzero(self.crew_finish <= t_next + _EPS):
            e = self.crew_elem[c]
            self.status[e] = 2
            self.finish[e] = self.crew_finish[c]
            self.crew_elem[c] = -1
            self.crew_finish[c] = math.inf
        return True

    def snapshot(self):
        return (self.t, self.status.copy(), self.crew_elem.copy(), self.crew_finish.copy(),
                self.remaining.copy(), self.loss, self.q, self.draining, self.start.copy(),
                self.finish.copy(), self.crew_of.copy(), self.seq.copy(), self.n_assigned,
                self.crew_pos.copy(), self.travel.copy(), self.depart.copy(), self.origin.copy())

    def restore(self, snap) -> None:
        (self.t, status, crew_elem, crew_finish, remaining, self.loss, self.q, self.draining,
         start, finish, crew_of, seq, self.n_assigned, crew_pos, travel, depart, origin) = snap
        self.crew_pos[:] = crew_pos
        self.travel[:] = travel
        self.depart[:] = depart
        self.origin[:] = origin
        self.status[:] = status
        self.crew_elem[:] = crew_elem
        self.crew_finish[:] = crew_finish
        self.remaining[:] = remaining
        self.start[:] = start
        self.finish[:] = finish
        self.crew_of[:] = crew_of
        self.seq[:] = seq


def _play(p: _Problem, choose, bar: Tracker | None = None) -> _Run:
    """Run the event loop; ``choose(run, crew) -> element`` picks each free crew's next job
    (``bar`` counts the repairs assigned)."""
    run = _Run(p)
    run.settle()
    while True:
        crew = run.pending_crew()
        while crew >= 0:
            run.assign(crew, int(choose(run, crew)))
            if bar is not None:
                bar.update()
            crew = run.pending_crew()
        if not run.advance():
            break
        run.settle()
    return run


def _order_policy(p: _Problem, order: np.ndarray):
    """Each free crew takes the first waiting element of its layer in ``order``."""
    position = np.empty(p.k, np.int64)
    position[np.asarray(order, np.int64)] = np.arange(p.k)

    def choose(run: _Run, crew: int) -> int:
        cand = run.candidates(crew)
        return int(cand[np.argmin(position[cand])])
    return choose


# --------------------------------------------------------------------------- greedy
def _links(c: CompiledSystem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every way one node's state can reach another's: (from, to, edge or -1), both
    directions of edges, supplier -> dependent for dependencies."""
    grp_of_sup = np.repeat(np.arange(c.n_groups), np.diff(c.sup_ptr))
    src = np.concatenate([c.edge_src, c.edge_dst, c.sup_idx]).astype(np.int64)
    dst = np.concatenate([c.edge_dst, c.edge_src, c.group_owner[grp_of_sup]]).astype(np.int64)
    via = np.concatenate([np.arange(c.n_edges), np.arange(c.n_edges),
                          np.full(len(c.sup_idx), -1)]).astype(np.int64)
    return src, dst, via


class _Greedy:
    """Most demand back per repair hour, counting what the cascade unblocks.

    The exact gain of a candidate is one core fixpoint (with the repairs under way counted
    as done).  To avoid one fixpoint per waiting element at every decision:

    * candidates are tried in order of an upper bound on their score, and the search stops
      when no bound can beat the best exact score found (:func:`_gain_bounds`);
    * an exact gain is kept until something near the candidate changes: each choice marks
      the nodes it can affect (its own nodes, the nodes it links to and the whole
      components of not-working nodes it touches), and a kept gain is dropped when one of
      the candidate's own nodes or link partners was marked after it.  A repair changes
      only those components (same argument as the bound), and every component a candidate
      touches holds one of its link partners, so a gain that is kept is still exact.
      Every kept gain is dropped when a backup runs out or when the choice touches a
      ``giant`` layer that supplies a dependency; gains that touch a ``giant`` layer are
      never kept (they are not monotone);
    * in a ``giant`` layer that supplies nobody (roads), gains come in closed form from
      its components (:func:`_giant_gains`), with no fixpoint at all.

    With ``exhaustive=True`` every candidate is evaluated at every decision (the plain
    version the tests compare against).
    """

    def __init__(self, p: _Problem, exhaustive: bool = False):
        self.p = p
        self.exhaustive = exhaustive
        c = p.compiled
        self.ws = workspace(c)
        self.crit = p.criticality() / np.maximum(p.repair_time, _EPS)
        self.src, self.dst, self.via = _links(c)
        self.giant = c.layer_rule[c.node_layer] == 2
        # A giant layer that supplies a dependency can change anything anywhere.
        supplies = np.zeros(len(c.layer_names), bool)
        supplies[c.node_layer[c.sup_idx]] = True
        self.giant_layer = (c.layer_rule == 2)
        self.wild_layer = self.giant_layer & supplies
        # A giant layer that supplies nobody: gains in closed form (_giant_gains).
        self.closed_layer = self.giant_layer & ~supplies
        # Static partners of each element: its node (or both ends) and every node linked
        # to it in either direction.
        parts, owner = [], []
        node_pos = np.full(c.n_nodes, -1, np.int64)
        node_pos[p.elem[p.is_node]] = np.flatnonzero(p.is_node)
        for a, b in ((self.src, self.dst), (self.dst, self.src)):
            hit = node_pos[a] >= 0
            parts.append(b[hit])
            owner.append(node_pos[a[hit]])
        idx = np.flatnonzero(p.is_node)
        parts.append(p.elem[idx])
        owner.append(idx)
        idx = np.flatnonzero(~p.is_node)
        for ends in (c.edge_src, c.edge_dst):
            parts.append(ends[p.elem[idx]].astype(np.int64))
            owner.append(idx)
        owner = np.concatenate(owner)
        parts = np.concatenate(parts)
        order = np.argsort(owner, kind="stable")
        self.partners = parts[order]
        self.partner_ptr = np.zeros(p.k + 1, np.int64)
        np.cumsum(np.bincount(owner, minlength=p.k), out=self.partner_ptr[1:])
        self.partner_layers = [np.unique(c.node_layer[self.partners[self.partner_ptr[i]:
                                                                     self.partner_ptr[i + 1]]])
                               for i in range(p.k)]
        self.touch = np.full(c.n_nodes, -1, np.int64)
        self.cache = np.full(p.k, math.nan)        # exact gains kept
        self.cache_step = np.full(p.k, -2, np.int64)   # -2: nothing kept (touch starts at -1)
        self.step = 0
        self.holds = None
        self.evaluations = 0

    def gain(self, waiting: np.ndarray, e: int, base: float) -> float:
        waiting[e] = False
        self.p.run_waiting(self.ws, waiting)
        waiting[e] = True
        self.evaluations += 1
        return self.p.served(self.p.share(self.ws)) - base

    def __call__(self, run: _Run, crew: int) -> int:
        p, ws = self.p, self.ws
        cand = run.candidates(crew)
        held = run.remaining > 0
        if self.holds is None or not np.array_equal(held, self.holds):
            self.holds = held
            self.cache_step[:] = -2          # a backup ran out: every kept gain may be stale
        ws.group_held[:] = held
        waiting = run.status == 0             # repairs under way count as done
        p.run_waiting(ws, waiting)
        base = p.served(p.share(ws))
        layer = int(p.crew_layer[crew])
        hours, bonus = self._hours(run, crew, cand)
        if layer >= 0 and self.closed_layer[layer] and not self.exhaustive:
            gains = _giant_gains(p, ws, waiting, layer, cand, self.src, self.dst, self.via) + bonus
            keys = [((g / h), self.crit[e], -p.rank[e]) for g, h, e in zip(gains, hours, cand)]
            best = 0
            for i in range(1, len(cand)):
                if _better(keys[i], keys[best]):
                    best = i
            # Its repair changes only its own layer, whose candidates are never kept.
            return int(cand[best])
        if p.flow:
            # Served amounts are not monotone in repairs (a closed line can overload another,
            # a fairer share can cut a node's): every candidate is evaluated, nothing is kept.
            bound = np.full(len(cand), math.inf)
            seeds = [np.zeros(0, np.int64)] * len(cand)
            label = np.zeros(p.compiled.n_nodes, np.int64)
            down = np.zeros(p.compiled.n_nodes, bool)
        else:
            bound, seeds, label, down = _gain_bounds(p, ws, waiting, cand, self.src, self.dst,
                                                     self.via, self.giant)
        ub = (bound + bonus) / hours
        known = np.zeros(len(cand), bool)
        if not self.exhaustive:
            last = np.maximum.reduceat(self.touch[self.partners], self.partner_ptr[:-1])[cand]
            # Kept at or after the last mark of every partner: still exact.
            known = (self.cache_step[cand] >= last) & (bound > 0)
            ub[known] = (self.cache[cand[known]] + bonus[known]) / hours[known]
        # Try candidates by bound; the tie-break key is (score, criticality per hour, -rank).
        order = np.lexsort((p.rank[cand], -self.crit[cand], -ub))
        best_key, best = None, -1
        for i in order:
            if (not self.exhaustive and best_key is not None
                    and ub[i] < best_key[0] - _EPS * max(1.0, abs(best_key[0]))):
                break
            e = cand[i]
            if known[i]:
                score = ub[i]
            elif bound[i] > 0 or self.exhaustive:
                g = self.gain(waiting, e, base)
                if np.isfinite(bound[i]):      # gains that touch a giant layer are not kept
                    self.cache[e], self.cache_step[e] = g, self.step
                score = (g + bonus[i]) / hours[i]
            else:
                score = bonus[i] / hours[i]
            key = (score, self.crit[e], -p.rank[e])
            if best_key is None or _better(key, best_key):
                best_key, best = key, e
        self._mark(int(best), seeds[np.flatnonzero(cand == best)[0]], label, down)
        return int(best)

    def _hours(self, run: _Run, crew: int, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hours each candidate takes the crew (travel + repair) and, with crews on roads,
        the value of what a road repair unblocks: the static criticality (demand lost alone)
        of the waiting elements no crew reaches now and one of them would after it."""
        p = self.p
        bonus = np.zeros(len(cand))
        if p.roads is None:
            return np.maximum(p.repair_time[cand], _EPS), bonus
        travel, _ = run.trip(crew, cand)
        hours = np.maximum(p.repair_time[cand] + travel, _EPS)
        roads = p.roads
        road_cand = np.flatnonzero(roads.road_elem[cand])
        waiting = np.flatnonzero(run.status == 0)
        if road_cand.size and waiting.size:
            origins = np.unique(run.crew_pos)

            def reached(status) -> np.ndarray:
                ok = np.zeros(len(waiting), bool)
                for o in origins:
                    ok |= np.isfinite(roads.travel(roads.distances(status, int(o)), waiting)[0])
                return ok

            now = reached(run.status)
            if not now.all():
                crit = p.criticality()
                status = run.status.copy()
                for i in road_cand:
                    e = cand[i]
                    status[e] = 2
                    gained = reached(status) & ~now
                    status[e] = run.status[e]
                    bonus[i] = float(crit[waiting[gained]].sum())
        return hours, bonus

    def _wild(self, e: int, comp_labels: np.ndarray, label: np.ndarray) -> bool:
        """Whether element e touches a giant layer that supplies a dependency."""
        if not self.wild_layer.any():
            return False
        c = self.p.compiled
        layers = set(self.partner_layers[e].tolist())
        if comp_labels.size:
            layers |= set(np.unique(c.node_layer[np.isin(label, comp_labels)]).tolist())
        return any(self.wild_layer[list(layers)])

    def _mark(self, e: int, comp_labels: np.ndarray, label: np.ndarray, down: np.ndarray) -> None:
        """Mark what choosing e can change (see the class docstring)."""
        self.step += 1
        if self._wild(e, comp_labels, label):
            self.cache_step[:] = -2
            return
        mine = self.partners[self.partner_ptr[e]:self.partner_ptr[e + 1]]
        comps = np.union1d(comp_labels, label[mine[down[mine]]])
        self.touch[np.isin(label, comps) & down] = self.step
        self.touch[mine] = self.step


def _better(a, b) -> bool:
    """Lexicographic a > b with the first entry compared up to rounding."""
    tol = _EPS * max(1.0, abs(a[0]), abs(b[0]))
    if abs(a[0] - b[0]) > tol:
        return a[0] > b[0]
    return a[1:] > b[1:]


def _damage_masks(p: _Problem, waiting: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nodes (n,) and edges (m,) still waiting for repair, as boolean masks."""
    damaged_node = np.zeros(p.compiled.n_nodes, bool)
    damaged_node[p.elem[waiting & p.is_node]] = True
    damaged_edge = np.zeros(p.compiled.n_edges, bool)
    damaged_edge[p.elem[waiting & ~p.is_node]] = True
    return damaged_node, damaged_edge


def _components(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Component label (int32, shape (n,)) of each node over the undirected links a[i]-b[i]."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    indptr = np.zeros(n + 1, np.int32)
    np.cumsum(np.bincount(a, minlength=n), out=indptr[1:])
    graph = csr_matrix((np.ones(len(a)), b[np.argsort(a, kind="stable")].astype(np.int32), indptr),
                       shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _giant_gains(p: _Problem, ws: Workspace, waiting: np.ndarray, layer: int, cand: np.ndarray,
                 src, dst, via) -> np.ndarray:
    """Exact gains of repairing each candidate of a ``giant`` layer that supplies nobody.

    Such a layer cannot change any other layer, and which of its nodes pass their
    dependencies does not depend on it, so with the fixpoint W in the workspace a repair
    only joins components: the eligible nodes (not damaged, every group with a working
    supplier or a running backup) form components over the usable edges; the candidate
    merges the ones it touches into M, and the giant is the larger of M and the current
    giant G (ties to the component holding the first node in file order, docs/format.md).

    Returns
    -------
    ndarray of float64, shape (len(cand),)
        Served demand (Q's weights) gained.
    """
    c = p.compiled
    n = c.n_nodes
    damaged_node, damaged_edge = _damage_masks(p, waiting)
    in_layer = c.node_layer == layer
    unmet = np.zeros(n, bool)
    unmet[c.group_owner[(ws.alive == 0) & (ws.group_held == 0)]] = True
    eligible = in_layer & ~damaged_node & ~unmet
    link = via >= 0
    link[link] = ~damaged_edge[via[link]]
    inside = link & eligible[src] & eligible[dst]
    a, b = src[inside], dst[inside]
    label = _components(a, b, n)
    label = label.astype(np.int64)
    size = np.bincount(label, weights=eligible, minlength=n)
    weight = np.bincount(label, weights=p.weight * eligible, minlength=n)
    first = np.full(n, n, np.int64)
    nodes = np.flatnonzero(eligible)
    np.minimum.at(first, label[nodes], nodes)
    working = np.flatnonzero(in_layer & (ws.working == 1))
    g_label = int(label[working[0]]) if working.size else -1
    g_size = size[g_label] if working.size else 0.0
    g_weight = weight[g_label] if working.size else 0.0
    g_first = first[g_label] if working.size else n

    out = np.zeros(len(cand))
    is_node = p.is_node[cand]
    pc, pl = [], []
    own_size = np.zeros(len(cand))
    own_weight = np.zeros(len(cand))
    own_first = np.full(len(cand), n, np.int64)
    ok = np.ones(len(cand), bool)
    node_c = np.flatnonzero(is_node)
    if node_c.size:
        v = p.elem[cand[node_c]]
        ok[node_c] = ~unmet[v]
        own_size[node_c] = 1.0
        own_weight[node_c] = p.weight[v]
        own_first[node_c] = v
        where = np.full(n, -1, np.int64)
        where[v] = node_c
        hit = link & (where[src] >= 0) & eligible[dst]
        pc.append(where[src[hit]])
        pl.append(label[dst[hit]])
    edge_c = np.flatnonzero(~is_node)
    if edge_c.size:
        e = p.elem[cand[edge_c]]
        u, w = c.edge_src[e].astype(np.int64), c.edge_dst[e].astype(np.int64)
        ok[edge_c] = eligible[u] & eligible[w]
        pc += [edge_c, edge_c]
        pl += [label[u], label[w]]
    if pc:
        pairs = np.unique(np.concatenate(pc) * n + np.concatenate(pl))
        ci, li = pairs // n, pairs % n
    else:
        ci = li = np.zeros(0, np.int64)
    m_size = own_size + np.bincount(ci, weights=size[li], minlength=len(cand))
    m_weight = own_weight + np.bincount(ci, weights=weight[li], minlength=len(cand))
    m_first = own_first.copy()
    np.minimum.at(m_first, ci, first[li])
    has_giant = np.zeros(len(cand), bool)
    has_giant[ci[li == g_label]] = True
    wins = (m_size > g_size) | ((m_size == g_size) & (m_first < g_first))
    out = np.where(has_giant, m_weight - g_weight, np.where(wins, m_weight - g_weight, 0.0))
    # An edge inside one component changes nothing (its merge counted that component once).
    return np.where(ok, out, 0.0)


def _gain_bounds(p: _Problem, ws: Workspace, waiting: np.ndarray, cand: np.ndarray,
                 src, dst, via, giant):
    """Upper bounds on the demand each candidate's repair brings back.

    The workspace holds the fixpoint W with ``waiting`` damaged.  A node that comes back
    when candidate e is repaired is reachable from e through nodes that come back too (if
    not, W plus the unreachable ones would satisfy every rule, and W is the largest such
    set: true for ``source`` and ``none`` layers), so it lies in a connected component,
    counted undirected, of the graph of links among the nodes that neither work nor are
    damaged.  The bound is the demand of the components e's links touch, plus e's own
    demand.  ``giant`` layers are not monotone (a repair can change which component is the
    giant), so a candidate that touches one gets an infinite bound and is always evaluated.

    Returns
    -------
    bound : ndarray of float64, shape (len(cand),)
    seeds : list of ndarray of int64
        The component labels each candidate touches.
    label : ndarray of int32, shape (n,)
        Component label of every node.
    down : ndarray of bool, shape (n,)
        Nodes that neither work nor are damaged.
    """
    c = p.compiled
    n = c.n_nodes
    damaged_node, damaged_edge = _damage_masks(p, waiting)
    down = (ws.working == 0) & ~damaged_node               # could come back
    usable_link = via < 0
    usable_link[~usable_link] = ~damaged_edge[via[~usable_link]]
    inside = usable_link & down[src] & down[dst]
    a, b = src[inside], dst[inside]
    label = _components(a, b, n)
    comp_weight = np.bincount(label, weights=p.weight * down, minlength=n)
    comp_giant = np.bincount(label, weights=(giant & down).astype(float), minlength=n) > 0

    # Seeds of each candidate: for a node, the nodes its links lead to; for an edge, its ends.
    out = np.zeros(len(cand))
    is_node = p.is_node[cand]
    seeds_c, seeds_v = [], []
    node_c = np.flatnonzero(is_node)
    if node_c.size:
        v = p.elem[cand[node_c]]
        out[node_c] = p.weight[v]
        where = np.full(n, -1, np.int64)
        where[v] = node_c
        touches = (where[src] >= 0) & usable_link
        seeds_c.append(where[src[touches]])
        seeds_v.append(dst[touches])
        out[node_c[giant[v]]] = math.inf
    edge_c = np.flatnonzero(~is_node)
    if edge_c.size:
        e = p.elem[cand[edge_c]]
        a, b = c.edge_src[e].astype(np.int64), c.edge_dst[e].astype(np.int64)
        # An edge with a damaged end stays unusable: it brings nothing back.
        dead = damaged_node[a] | damaged_node[b]
        seeds_c += [edge_c[~dead], edge_c[~dead]]
        seeds_v += [a[~dead], b[~dead]]
        out[edge_c[giant[a] & ~dead]] = math.inf
    seeds = [np.zeros(0, np.int64)] * len(cand)
    if seeds_c:
        sc = np.concatenate(seeds_c)
        sv = np.concatenate(seeds_v)
        keep = down[sv]
        sc, lab = sc[keep], label[sv[keep]].astype(np.int64)
        if sc.size:
            pairs = np.unique(sc * n + lab)
            pc, pl = pairs // n, pairs % n
            np.add.at(out, pc, comp_weight[pl])
            out[pc[comp_giant[pl]]] = math.inf
            cut = np.searchsorted(pc, np.arange(len(cand) + 1))
            seeds = [pl[cut[i]:cut[i + 1]] for i in range(len(cand))]
    return out, seeds, label, down


# --------------------------------------------------------------------------- optimal
def _layer_counts(p: _Problem) -> np.ndarray:
    """Elements whose repair orders are independent: per layer, or all together when a pool or
    roads let any crew take any element."""
    if p.crews.get(POOL, 0) or p.roads is not None:
        return np.array([p.k])
    return np.bincount(p.layer, minlength=len(p.compiled.layer_names))


def _order_count(p: _Problem) -> int:
    counts = _layer_counts(p)
    if sum(math.lgamma(int(k) + 1) for k in counts) > math.log(OPTIMAL_MAX_ORDERS) + 1:
        return OPTIMAL_MAX_ORDERS + 1     # above the limit; the exact number is not needed
    return math.prod(math.factorial(int(k)) for k in counts)


def _orders_text(counts) -> str:
    """``12! ≈ 4.8e8`` or ``3! × 4! = 144``: the number of per-layer orders, never 300 digits."""
    terms = [f"{int(k)}!" for k in counts if k > 1] or ["1"]
    log10 = sum(math.lgamma(int(k) + 1) for k in counts) / math.log(10)
    if log10 < 6:
        value = f"= {math.prod(math.factorial(int(k)) for k in counts):,}"
    else:
        exponent = math.floor(log10)
        value = f"≈ {10 ** (log10 - exponent):.1f}e{exponent}"
    return f"{' × '.join(terms)} {value}"


def _optimal_order(p: _Problem, incumbent: _Run) -> np.ndarray:
    """Branch and bound over the crews' choices; returns a priority order of the elements.

    A node of the search is a decision (a free crew takes one waiting element of its
    layer).  The loss accumulated so far only grows, so a branch is cut as soon as it reaches
    the best complete loss (first: the greedy schedule's).  Crews of one layer freed at the
    same time are interchangeable, so they take elements in increasing index order.  A
    state reached again (same time, statuses, crew jobs and backups) with no less loss is
    cut too (dynamic programming over states: with one crew, over the repaired subsets).
    """
    best = {"loss": incumbent.loss - 1e-12 * max(1.0, abs(incumbent.loss)),
            "order": None}
    run = _Run(p, record=False)
    run.settle()
    # The loss so far only grows while Q never exceeds Q0: true for v1 layers, and with flow
    # layers when the intact system serves everything (Q0 = 1).  Otherwise (a flow system whose
    # intact state already sheds load: a damaged line may then spare a trip) only states
    # reached again are cut.
    prune = not p.flow or p.q0 >= 1 - 1e-12
    decisions: list[int] = []
    seen: dict = {}

    def dominated() -> bool:
        """Whether this state (time, every element's status, the crews' jobs, the backups
        left) was already reached with no more loss: the future depends on nothing else."""
        key = (round(run.t, 9), run.status.tobytes(), run.crew_elem.tobytes(), run.crew_pos.tobytes(),
               np.round(run.crew_finish, 9).tobytes(), np.round(run.remaining, 9).tobytes())
        if key in seen and seen[key] <= run.loss + 1e-12:
            return True
        seen[key] = run.loss
        return False

    def descend(batch_time: float, batch_last: dict) -> None:
        crew = run.pending_crew()
        if crew < 0:
            snap = run.snapshot()
            if not run.advance():
                if run.loss < best["loss"]:
                    best["loss"], best["order"] = run.loss, list(decisions)
            elif run.loss < best["loss"] or not prune:
                run.settle()
                if not dominated():
                    descend(run.t, {})
            run.restore(snap)
            return
        layer = int(p.crew_layer[crew])
        cand = run.candidates(crew)
        # Crews on roads are not interchangeable (they stand in different places).
        floor = batch_last.get(layer, -1) if batch_time == run.t and p.roads is None else -1
        for e in cand[cand > floor]:
            snap = run.snapshot()
            run.assign(crew, int(e))
            decisions.append(int(e))
            descend(run.t, {**batch_last, layer: int(e)})
            decisions.pop()
            run.restore(snap)

    descend(0.0, {})
    if best["order"] is None:        # nothing beat the incumbent
        return None
    return np.array(best["order"], np.int64)


# --------------------------------------------------------------------------- public API
def _result(p: _Problem, run: _Run, strategy: str) -> RecoveryResult:
    c = p.compiled
    curve = pd.DataFrame({"time": np.array(run.curve_t), "service": np.array(run.curve_q)})
    layers = np.array(run.curve_layers).reshape(len(run.curve_t), len(c.layer_names))
    for i, name in enumerate(c.layer_names):
        curve[name] = layers[:, i]
    # In the order crews took them; elements no crew could reach (roads) last, unscheduled.
    order = np.argsort(np.where(run.seq >= 0, run.seq, p.k + np.arange(p.k)), kind="stable")
    crew = np.where(run.crew_of[order] >= 0, p.crew_names[np.maximum(run.crew_of[order], 0)], "")
    schedule = pd.DataFrame({
        "id": p.ids[order], "crew": crew,
        "start": run.start[order], "finish": run.finish[order],
        "layer": [c.layer_names[i] for i in p.layer[order]], "repair_cost": p.repair_cost[order]})
    if p.roads is not None:
        origin = run.origin[order]
        schedule["depart"] = run.depart[order]
        schedule["travel"] = run.travel[order]
        schedule["from"] = np.where(origin >= 0, c.node_ids[np.maximum(origin, 0)], "")
    metrics = curve_metrics(curve["time"].to_numpy(), curve["service"].to_numpy(), p.q0)
    metrics.update(baseline_service=p.q0,
                   repairs_done=float(np.nanmax(run.finish, initial=0.0)) if not np.isnan(run.finish).any()
                   else math.inf,
                   repair_cost=float(p.repair_cost.sum()))
    return RecoveryResult(strategy=strategy, crews=dict(p.crews), curve=curve, schedule=schedule,
                          metrics=metrics)


def recover(system: InfrastructureSystem, failed_ids, strategy: str = "greedy",
            crews: int | Mapping[str, int] = 1, seed: int = 0,
            compiled: CompiledSystem | None = None, depots=None, speed: float | None = None,
            progress: ProgressArg = None, **milp) -> RecoveryResult:
    """Schedule the repair of the elements a hazard failed and follow service in time.

    Parameters
    ----------
    system : InfrastructureSystem
    failed_ids : iterable of str
        Node and edge ids failed by the hazard (the ones that need a crew); a name that is
        both is the node.
    strategy : {"greedy", "critical", "random", "optimal"}
    crews : int or dict of str to int
        A number is that many crews in every layer; a dict names some layers, the others get
        one crew.
    seed : int
        Seed of ``random``.
    compiled : CompiledSystem, optional
        The compiled ``system``.
    depots : path or sequence of str, optional
        Crew bases (a CSV of :func:`cascade.travel.read_depots`, or transport node ids, one
        per crew slot): crews then drive on the roads (:mod:`cascade.travel`).
    speed : float, optional
        Crew speed in km/h on edges without ``travel_time`` (default 30).
    **milp
        ``milp`` options: ``period`` (hours), ``time_limit`` (s), ``gap``, ``cost_weight``,
        ``threads`` (see :func:`cascade.milp.solve`).
    progress : None, bool or callable
        Progress in repairs scheduled (see :mod:`cascade.progress`).

    Returns
    -------
    RecoveryResult

    Raises
    ------
    InputError
        On an unknown id, layer or strategy, a bad crew count, or ``optimal`` above
        :data:`OPTIMAL_MAX_ORDERS` repair orders.

    Examples
    --------
    >>> import networkx as nx
    >>> from cascade import InfrastructureSystem
    >>> power = nx.DiGraph([("plant", "h1"), ("plant", "h2")])
    >>> nx.set_node_attributes(power, {"plant": "source", "h1": "", "h2": ""}, "kind")
    >>> nx.set_node_attributes(power, {"plant": 0, "h1": 1, "h2": 1}, "demand")
    >>> nx.set_node_attributes(power, {"plant": 10, "h1": 1, "h2": 4}, "repair_time")
    >>> s = InfrastructureSystem.from_networkx({"power": power})
    >>> r = recover(s, ["h2", "h1"], strategy="optimal")
    >>> list(r.schedule["id"]), r.metrics["resilience_loss"]
    (['h1', 'h2'], 3.0)
    """
    return recover_many(system, failed_ids, [strategy], crews=crews, seed=seed, compiled=compiled,
                        depots=depots, speed=speed, progress=progress, **milp)[0]


def recover_many(system: InfrastructureSystem, failed_ids, strategies=("greedy",),
                 crews: int | Mapping[str, int] = 1, seed: int = 0,
                 compiled: CompiledSystem | None = None, depots=None, speed: float | None = None,
                 progress: ProgressArg = None, **milp) -> list[RecoveryResult]:
    """:func:`recover` with several strategies on one setup (compiled arrays, workspaces and
    criticality shared); every strategy is checked before any runs.  ``progress`` counts
    the repairs scheduled over all strategies."""
    strategies = list(dict.fromkeys(strategies))
    for strategy in strategies:
        if strategy not in STRATEGIES:
            raise InputError(f"unknown strategy '{strategy}' (use {', '.join(STRATEGIES)})")
    unknown = set(milp) - {"period", "time_limit", "gap", "cost_weight", "threads"}
    if unknown:
        raise TypeError(f"unknown milp option(s): {', '.join(sorted(unknown))}")
    compiled = compiled if compiled is not None else compile_system(system)
    p = _Problem(system, compiled, failed_ids, crews)
    if depots is not None:
        _set_roads(system, p, depots, speed)
    if "optimal" in strategies:
        _check_optimal(p)
    label = f"recovery ({strategies[0]})" if len(strategies) == 1 else "recovery"
    with tracker(progress, p.k * len(strategies), label, "repair") as bar:
        return [_recover(p, strategy, seed, bar, milp) for strategy in strategies]


def _set_roads(system: InfrastructureSystem, p: _Problem, depots, speed) -> None:
    from .travel import DEFAULT_SPEED, ROAD_LAYER, Roads, read_depots

    c = p.compiled
    if isinstance(depots, (str, bytes)) or hasattr(depots, "__fspath__"):
        bases = read_depots(depots, c)
    else:
        if ROAD_LAYER not in c.layer_names:
            raise InputError(f"depots need a layer named '{ROAD_LAYER}' to drive on")
        bases = c.node_index([str(x) for x in depots]).astype(np.int64)
        off = c.node_layer[bases] != c.layer_names.index(ROAD_LAYER)
        if off.any() or not len(bases):
            raise InputError(f"depot '{c.node_ids[bases[off][0]]}' is not in '{ROAD_LAYER}'"
                             if len(bases) else "no depot given")
    p.roads = Roads(system, c, p.elem, p.is_node, bases, len(p.crew_layer),
                    DEFAULT_SPEED if speed is None else float(speed))


def plot_curves(results, path=None, title: str | None = None):
    """Draw the service curves of several recoveries on one figure (matplotlib, Agg).

    The top panel has Q(t) of all layers together for every strategy, with its resilience
    loss in the legend, zoomed on the dip and the return to full service; the bottom panel
    has each layer's service under the strategy with the smallest loss, over its whole
    course.  With ``path`` the figure is written there atomically (format from
    the suffix).  Returns the :class:`matplotlib.figure.Figure`.
    """
    from .report import literal_text  # user text (strategy, layer names) drawn as written

    return literal_text(_plot_curves)(results, path, title)


def _plot_curves(results, path=None, title: str | None = None):
    """The figure of :func:`plot_curves`."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .io import write_atomic

    results = list(results)
    fig = Figure(figsize=(9, 11), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom, gantt = fig.subplots(3, 1, height_ratios=[3, 2, 2.5])
    q0 = results[0].metrics["baseline_service"]
    # Top: up to the latest return to Q0 (the part that counts in R), with some margin.
    restored = [r.metrics["restoration_time"] for r in results
                if math.isfinite(r.metrics["restoration_time"])]
    last = max([r.curve["time"].iloc[-1] for r in results] + [1.0])
    end = 1.15 * max(restored) if restored and max(restored) > 0 else last
    lead = 0.03 * end
    styles = ["-", "--", "-.", ":"]
    lowest = 1.0
    for i, r in enumerate(results):
        t = np.concatenate([[-lead, 0.0], r.curve["time"].to_numpy(), [max(end, last) * 1.05]])
        q = np.concatenate([[q0, q0], r.curve["service"].to_numpy(), [r.curve["service"].iloc[-1]]])
        lowest = min(lowest, float(np.nanmin(q)))
        top.step(t, 100 * q, where="post", lw=2, ls=styles[i % len(styles)],
                 label=f"{r.strategy}: R = {r.metrics['resilience_loss']:.2f} h, "
                       f"90 % at {r.metrics['time_to_90']:.0f} h, 100 % at "
                       f"{r.metrics['restoration_time']:.0f} h")
    top.axhline(100 * q0, color="0.6", lw=0.8)
    top.axhline(90 * q0, color="0.6", lw=0.8, ls=":")
    top.axvline(0, color="0.3", lw=0.8)
    top.set_ylabel("service Q(t), all layers (%)")
    top.set_xlabel("hours after the event")
    top.set_title(title or "Recovery after the event: service of all lifelines by repair strategy")
    top.legend(loc="lower right", fontsize=9)
    top.grid(alpha=0.3)
    # Zoom on the dip: from 10 % below the lowest point (in steps of 10 %) to full service.
    floor = max(0.0, math.floor(10 * lowest - 1e-9) / 10 - 0.1) if lowest > 0.2 else 0.0
    top.set_ylim(100 * floor - 1, 101.5)
    top.set_xlim(-lead, end)
    # Bottom: each layer under the best strategy, over its whole course.
    best = min(results, key=lambda r: r.metrics["resilience_loss"])
    layers = [col for col in best.curve.columns if col not in ("time", "service")]
    span = max(best.curve["time"].iloc[-1], end, 1.0) * 1.05
    for name in layers:
        values = best.curve[name].to_numpy()
        t = np.concatenate([[-0.03 * span], best.curve["time"].to_numpy(), [span]])
        v = np.concatenate([[values[-1]], values, [values[-1]]])
        bottom.step(t, 100 * v, where="post", lw=1.5, label=name)
    bottom.axvline(0, color="0.3", lw=0.8)
    bottom.set_ylabel("service per layer (%)")
    bottom.set_xlabel("hours after the event")
    bottom.set_title(f"each layer under {best.strategy} (a layer without demand: share of "
                     "working nodes; it is not part of Q)", fontsize=9)
    bottom.legend(loc="lower right", fontsize=8, ncol=min(5, max(1, len(layers))))
    bottom.grid(alpha=0.3)
    bottom.set_ylim(-3, 103)
    bottom.set_xlim(-0.03 * span, span)
    _gantt(gantt, next((r for r in results if r.strategy == "milp"), best))
    if path is not None:
        buf = io.BytesIO()
        fig.savefig(buf, format=str(path).rsplit(".", 1)[-1].lower(), dpi=110)
        write_atomic(path, buf.getvalue())
    return fig


def _gantt(ax, result: RecoveryResult) -> None:
    """The crews' Gantt chart of one recovery: a row per crew, repairs coloured by layer,
    travel legs hatched.  Names from the input are drawn literally (no math text)."""
    sched = result.schedule[result.schedule["crew"] != ""]
    crews = list(dict.fromkeys(sched["crew"]))
    row = {name: i for i, name in enumerate(crews)}
    layers = list(dict.fromkeys(result.schedule["layer"]))
    colours = {name: f"C{i % 10}" for i, name in enumerate(layers)}
    for r in sched.to_dict("records"):
        y = row[r["crew"]]
        if "travel" in r and r["travel"] > 0:
            ax.barh(y, r["travel"], left=r["depart"], height=0.6, color="0.85", edgecolor="0.5",
                    hatch="//", lw=0.5)
        ax.barh(y, r["finish"] - r["start"], left=r["start"], height=0.6,
                color=colours[r["layer"]], edgecolor="black", lw=0.5)
    ax.set_yticks(range(len(crews)))
    ax.set_yticklabels(crews, fontsize=7)
    for label in ax.get_yticklabels():
        label.set_parse_math(False)
    ax.invert_yaxis()
    ax.set_xlabel("hours after the event")
    title = ax.set_title(f"crews under {result.strategy}: repairs by layer"
                         + (", travel hatched" if "travel" in result.schedule.columns else ""),
                         fontsize=9)
    title.set_parse_math(False)
    from matplotlib.patches import Patch
    legend = ax.legend(handles=[Patch(color=colours[name], label=name) for name in layers],
                       loc="lower right", fontsize=7, ncol=min(5, max(1, len(layers))))
    for text in legend.get_texts():
        text.set_parse_math(False)
    ax.grid(alpha=0.3, axis="x")


def schedule_order(system: InfrastructureSystem, failed_ids, order,
                   crews: int | Mapping[str, int] = 1,
                   compiled: CompiledSystem | None = None, depots=None,
                   speed: float | None = None) -> RecoveryResult:
    """Recover with a given priority list: each free crew takes the first waiting element of
    its layer in ``order`` (ids, a permutation of ``failed_ids``) that it may take (with
    ``depots``: that it can reach).  Strategy name ``order``."""
    compiled = compiled if compiled is not None else compile_system(system)
    p = _Problem(system, compiled, failed_ids, crews)
    if depots is not None:
        _set_roads(system, p, depots, speed)
    pos = {str(x): i for i, x in enumerate(p.ids)}
    try:
        idx = np.array([pos[str(x)] for x in order], np.int64)
    except KeyError as exc:
        raise InputError(f"order names '{exc.args[0]}', which is not a failed element") from None
    if sorted(idx.tolist()) != list(range(p.k)):
        raise InputError("order must list every failed element once")
    return _result(p, _play(p, _order_policy(p, idx)), "order")


def _check_optimal(p: _Problem) -> None:
    if _order_count(p) > OPTIMAL_MAX_ORDERS:
        counts = _layer_counts(p)
        limit = next(k for k in range(1, 30) if math.factorial(k) >= OPTIMAL_MAX_ORDERS)
        limit_text = (f"{limit}! = {OPTIMAL_MAX_ORDERS:,}" if math.factorial(limit) == OPTIMAL_MAX_ORDERS
                      else f"{OPTIMAL_MAX_ORDERS:,}")
        raise InputError(f"optimal: {p.k} failed elements give {_orders_text(counts)} repair orders "
                         f"per layer, above the limit {limit_text}; use greedy, or fewer elements")


def _recover(p: _Problem, strategy: str, seed: int, bar: Tracker | None = None,
             milp: dict | None = None) -> RecoveryResult:
    if strategy == "optimal":
        _check_optimal(p)
    if strategy == "random":
        order = np.random.default_rng(seed).permutation(p.k)
        return _result(p, _play(p, _order_policy(p, order), bar), strategy)
    if strategy == "critical":
        order = np.lexsort((p.rank, p.repair_time, -p.criticality()))
        return _result(p, _play(p, _order_policy(p, order), bar), strategy)
    greedy = _play(p, _Greedy(p), bar)
    if strategy == "greedy":
        return _result(p, greedy, strategy)
    if strategy == "milp":
        from .milp import solve

        warm = np.argsort(np.where(greedy.seq >= 0, greedy.seq, p.k + np.arange(p.k)), kind="stable")
        order, info = solve(p, warm, **(milp or {}))
        info.pop("start_periods", None)
        info["greedy_resilience_loss"] = _result(p, greedy, "greedy").metrics["resilience_loss"]
        # The replay: each free crew takes the first waiting element it may in the MILP's
        # order (by start period); no solution in time: the greedy schedule.
        run = greedy if order is None else _play(p, _order_policy(p, order))
        if p.flow:
            # With flow layers the program relaxes (dcflow without the voltage law or trips,
            # thresholds on amounts it may allot freely): its schedule is kept only when its
            # replay loses no more than greedy's; otherwise greedy's schedule stands.
            info["schedule"] = "milp"
            if run is not greedy and run.loss > greedy.loss + 1e-12 * max(1.0, abs(greedy.loss)):
                run, info["schedule"] = greedy, "greedy"
            elif run is greedy:
                info["schedule"] = "greedy"
        result = _result(p, run, strategy)
        # The replayed schedule against the combinatorial bound of every schedule's loss
        # (cascade.milp_bound; None where it does not apply).
        lb, loss = info.get("loss_bound"), result.metrics["resilience_loss"]
        info["loss_gap"] = (None if lb is None or not math.isfinite(loss) else
                            0.0 if loss - lb <= 1e-9 * max(1.0, abs(loss)) else
                            float((loss - lb) / max(abs(loss), 1e-12)))
        result.solver = info
        return result
    # optimal: the greedy schedule as incumbent, then branch and bound.
    order = _optimal_order(p, greedy)
    if order is None:
        return _result(p, greedy, strategy)
    return _result(p, _play(p, _order_policy(p, order)), strategy)
