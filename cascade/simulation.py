"""One static cascade with its trace: :func:`simulate` and :class:`CascadeResult`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .compiled import CAUSES, FLOW_CODES, RULE_CODES, CompiledSystem, Workspace, compile_system
from .errors import InputError
from .system import InfrastructureSystem

ENGINES = ("core", "reference")


def layer_service(compiled: CompiledSystem, working: np.ndarray,
                  served: np.ndarray | None = None) -> pd.DataFrame:
    """Per-layer service of a working mask (docs/format.md, "Service").

    ``served``, when given, is each node's served fraction (docs/format.md (v2)): a working node then
    counts ``demand * served`` instead of its whole demand.

    Returns
    -------
    pandas.DataFrame
        Indexed by layer name, columns ``nodes``, ``functioning``, ``demand``,
        ``demand_served``, ``service``.  ``service`` is served / demand, or the fraction of
        working nodes in a layer without demand (NaN in a layer without nodes).
    """
    L = len(compiled.layer_names)
    working = np.asarray(working, bool)
    nodes = np.bincount(compiled.node_layer, minlength=L)
    functioning = np.bincount(compiled.node_layer, weights=working, minlength=L).astype(int)
    demand = np.bincount(compiled.node_layer, weights=compiled.demand, minlength=L)
    share = working if served is None else working * np.asarray(served, float)
    served = np.bincount(compiled.node_layer, weights=compiled.demand * share, minlength=L)
    with np.errstate(invalid="ignore", divide="ignore"):
        service = np.where(demand > 0, served / np.where(demand > 0, demand, 1),
                           functioning / np.where(nodes > 0, nodes, 1))
    service = np.where(nodes > 0, service, np.nan)
    return pd.DataFrame({"nodes": nodes, "functioning": functioning, "demand": demand,
                         "demand_served": served, "service": service},
                        index=pd.Index(compiled.layer_names, name="layer"))


@dataclass
class CascadeResult:
    """The outcome of one cascade, as arrays over the compiled system's nodes.

    Attributes
    ----------
    compiled : CompiledSystem
    working : ndarray of bool, shape (n,)
        Final state.
    fail_round : ndarray of int32, shape (n,)
        Round in which each node stopped working, -1 for working nodes.
    cause : ndarray of uint8, shape (n,)
        Index into ``("", "initial", "dependency", "disconnected")``.
    via_group : ndarray of int64, shape (n,)
        For ``dependency`` failures, the emptied group (first one on a tie), else -1.
    initial_nodes, initial_edges : ndarray of int64
        Indices of the initial failures.
    baseline_working : ndarray of bool, shape (n,)
        State of the intact system (no initial failure), for "before" figures.
    engine : str
    served : ndarray of float64, shape (n,), or None
        Systems with flow layers only: each node's served fraction (docs/format.md (v2)): x/d in
        ``flow``/``dcflow`` layers (1 for a working node without demand), 1 for a working node
        of a v1 layer, 0 for a node that stopped.  None for v1 systems.
    baseline_served : ndarray of float64, shape (n,), or None
        The same for the intact system.
    flows : ndarray of float64, shape (m,), or None
        Flow of every usable branch of a ``dcflow`` layer in the final state (signed, source to
        target, in the layer's unit); NaN for every other edge.  None for v1 systems.
    trips : pandas.DataFrame or None
        Branches tripped on overload: ``id``, ``layer``, ``round``, ``step``, ``flow`` (at the
        moment of the trip), ``capacity``.  None for v1 systems.
    """

    compiled: CompiledSystem
    working: np.ndarray
    fail_round: np.ndarray
    cause: np.ndarray
    via_group: np.ndarray
    initial_nodes: np.ndarray
    initial_edges: np.ndarray
    baseline_working: np.ndarray
    engine: str = "core"
    served: np.ndarray | None = None
    baseline_served: np.ndarray | None = None
    flows: np.ndarray | None = None
    trips: pd.DataFrame | None = None
    _via: np.ndarray | None = field(default=None, repr=False)
    _routing: object = field(default=None, repr=False)

    @property
    def rounds(self) -> int:
        """The last round in which a node stopped working or a branch tripped (0 when none)."""
        last = int(self.fail_round.max(initial=0))
        if self.trips is not None and len(self.trips):
            last = max(last, int(self.trips["round"].max()))
        return last

    @property
    def via_supplier(self) -> np.ndarray:
        """For each dependency failure the supplier of the emptied group that failed last
        (the first listed among those that failed in the previous round); -1 otherwise."""
        if self._via is None:
            c = self.compiled
            via = np.full(c.n_nodes, -1, np.int64)
            for v in np.flatnonzero(self.via_group >= 0):
                g = self.via_group[v]
                members = c.sup_idx[c.sup_ptr[g]:c.sup_ptr[g + 1]]
                last = members[self.fail_round[members] == self.fail_round[v] - 1]
                via[v] = last[0]
            self._via = via
        return self._via

    def failed(self) -> pd.DataFrame:
        """Nodes that stopped working, in round order then file order.

        Columns: ``id``, ``layer``, ``round``, ``cause``, ``via`` (supplier id or None),
        ``group`` (the emptied group's label or None).
        """
        c = self.compiled
        idx = np.flatnonzero(~self.working)
        idx = idx[np.lexsort((idx, self.fail_round[idx]))]
        via = self.via_supplier[idx]
        groups = self.via_group[idx]
        return pd.DataFrame({
            "id": c.node_ids[idx],
            "layer": [c.layer_names[i] for i in c.node_layer[idx]],
            "round": self.fail_round[idx].astype(int),
            "cause": [CAUSES[k] for k in self.cause[idx]],
            "via": [c.node_ids[s] if s >= 0 else None for s in via],
            "group": [(c.group_name[g] or None) if g >= 0 else None for g in groups],
        })

    def layers(self, before: bool = False) -> pd.DataFrame:
        """Per-layer service after the cascade, or of the intact system with ``before=True``."""
        if before:
            return layer_service(self.compiled, self.baseline_working, self.baseline_served)
        return layer_service(self.compiled, self.working, self.served)

    def to_dict(self) -> dict:
        """The JSON shape of ``cascade simulate --format json``."""
        c = self.compiled
        layers = self.layers()
        before = self.layers(before=True)

        def num(x):
            return None if pd.isna(x) else float(x)

        out = {
            "system": c.name,
            "engine": self.engine,
            "rounds": self.rounds,
            "initial_failures": {"nodes": [str(c.node_ids[i]) for i in self.initial_nodes],
                                 "edges": [str(c.edge_ids[i]) for i in self.initial_edges]},
            "layers": {name: {"nodes": int(row.nodes), "functioning": int(row.functioning),
                              "demand": float(row.demand), "demand_served": float(row.demand_served),
                              "service": num(row.service),
                              "service_before": num(before.loc[name, "service"])}
                       for name, row in layers.iterrows()},
            "failed": [{"id": str(r.id), "layer": r.layer, "round": int(r.round), "cause": r.cause,
                        "via": r.via, "group": r.group}
                       for r in self.failed().itertuples(index=False)],
        }
        if self.served is not None:
            out.update(self._flow_dict())
        return out

    def _flow_dict(self) -> dict:
        """docs/format.md (v2)'s ``served``, ``flows`` and ``tripped`` (finite numbers only)."""
        c = self.compiled
        flow_node = np.isin(c.layer_rule[c.node_layer], FLOW_CODES)
        shown = np.flatnonzero(flow_node & self.working & (c.demand > 0))
        usable = np.flatnonzero(~np.isnan(self.flows))
        trips = self.trips if self.trips is not None else pd.DataFrame(
            columns=["id", "layer", "round", "step", "flow", "capacity"])
        out = {
            "served": {str(c.node_ids[v]): float(self.served[v]) for v in shown},
            "flows": {str(c.edge_ids[e]): float(self.flows[e]) for e in usable},
            "tripped": [{"id": str(t.id), "layer": str(t.layer), "round": int(t.round), "step": int(t.step),
                         "flow": float(t.flow), "capacity": float(t.capacity)}
                        for t in trips.itertuples(index=False)],
        }
        if (c.layer_rule == RULE_CODES["flow"]).any():
            # flow layers: per-pipe flows are not unique (cascade.routing); one routing of the
            # served amounts, and the pipes at capacity in every routing
            r = self.routing()
            out["routing"] = {str(c.edge_ids[e]): float(r.flows[e]) for e in np.flatnonzero(~np.isnan(r.flows))}
            out["bottlenecks"] = [str(c.edge_ids[e]) for e in np.flatnonzero(r.bottleneck)]
        return out

    def routing(self):
        """The ``flow`` layers' pipes in the final state (:func:`cascade.routing.flow_routing`):
        one routing of the served amounts (not unique) and the bottleneck pipes (unique)."""
        from .routing import flow_routing

        if self._routing is None:
            self._routing = flow_routing(self.compiled, self.working, self.initial_edges)
        return self._routing


def _run_core(compiled: CompiledSystem, nodes, edges, workspace: Workspace | None = None):
    ws = workspace or Workspace(compiled)
    ws.run(nodes, edges)
    return (ws.working.astype(bool), ws.fail_round.copy(), ws.cause.copy(),
            ws.via_group.astype(np.int64))


def _run_reference(system: InfrastructureSystem, compiled: CompiledSystem, nodes, edges):
    from .reference import run_cascade

    failures = run_cascade(system, compiled.node_ids[nodes], compiled.edge_ids[edges])
    return _failure_arrays(compiled, failures)[:4]


def _failure_arrays(compiled: CompiledSystem, failures) -> tuple:
    """A reference engine's failures by name as arrays: working, fail_round, cause, via_group
    and via (the supplier index, -1 for none)."""
    n = compiled.n_nodes
    working = np.ones(n, bool)
    fail_round = np.full(n, -1, np.int32)
    cause = np.zeros(n, np.uint8)
    via_group = np.full(n, -1, np.int64)
    via = np.full(n, -1, np.int64)
    for name, failure in failures.items():
        v = compiled.node_index([name])[0]
        working[v] = False
        fail_round[v] = failure.round
        cause[v] = CAUSES.index(failure.cause)
        if failure.group is not None:
            via_group[v] = compiled.grp_ptr[v] + failure.group
        if getattr(failure, "via", None) is not None:
            via[v] = compiled.node_index([failure.via])[0]
    return working, fail_round, cause, via_group, via


def _run_core_flow(compiled: CompiledSystem, nodes, edges):
    """The compiled engine on a system with flow layers (:mod:`cascade.flowcore`).

    Returns what :func:`_run_reference_flow` returns, as arrays over the compiled system:
    ``(working, fail_round, cause, via_group, served, flows, trips, via)`` with ``served``
    (n,) float64 fractions, ``flows`` (m,) float64 (NaN off usable dcflow branches), ``trips``
    a DataFrame ``id, layer, round, step, flow, capacity`` and ``via`` (n,) int64 (-1 = none).
    The kernels are built once per compiled system and thread, and reused.
    """
    from .flowcore import flow_engine

    return flow_engine(compiled).run(nodes, edges)


def _run_reference_flow(system: InfrastructureSystem, compiled: CompiledSystem, nodes, edges):
    """The v2 reference engine as arrays: the v1 four, then served, flows, trips and via."""
    from .reference_flow import run_flow_cascade

    outcome = run_flow_cascade(system, compiled.node_ids[nodes], compiled.edge_ids[edges])
    working, fail_round, cause, via_group, via = _failure_arrays(compiled, outcome.failures)
    n = compiled.n_nodes
    served = np.zeros(n)
    for name, fraction in outcome.served.items():
        served[compiled.node_index([name])[0]] = fraction
    flows = np.full(compiled.n_edges, np.nan)
    for name, amount in outcome.flows.items():
        flows[compiled.edge_index([name])[0]] = amount
    trips = pd.DataFrame([{"id": t.edge, "layer": t.layer, "round": t.round, "step": t.step,
                           "flow": t.flow, "capacity": t.capacity} for t in outcome.trips],
                         columns=["id", "layer", "round", "step", "flow", "capacity"])
    return working, fail_round, cause, via_group, served, flows, trips, via


def simulate(system: InfrastructureSystem, fail=(), *, engine: str = "core",
             compiled: CompiledSystem | None = None) -> CascadeResult:
    """Run the static cascade of docs/format.md from the failure of some nodes and edges.

    Parameters
    ----------
    system : InfrastructureSystem
    fail : iterable of str
        Ids of the initially failed nodes and edges (a name that is both is the node).
    engine : {"core", "reference"}
        The Cython core, or the networkx reference engine (slow; for checking).
    compiled : CompiledSystem, optional
        The compiled ``system``, to save compiling it again.

    Returns
    -------
    CascadeResult

    Raises
    ------
    InputError
        When an id is neither a node nor an edge.

    Examples
    --------
    >>> import networkx as nx
    >>> from cascade import InfrastructureSystem, simulate
    >>> power = nx.Graph([("plant", "sub")]); power.nodes["plant"]["kind"] = "source"
    >>> water = nx.Graph([("pump", "tap")]); water.nodes["pump"]["kind"] = "source"
    >>> s = InfrastructureSystem.from_networkx({"power": power, "water": water}, [("pump", "sub")])
    >>> sorted(simulate(s, ["plant"]).failed()["id"])
    ['plant', 'pump', 'sub', 'tap']
    """
    if engine not in ENGINES:
        raise InputError(f"unknown engine '{engine}' (use core or reference)")
    compiled = compiled if compiled is not None else compile_system(system)
    nodes, edges = compiled.split_ids(fail)
    if compiled.has_flow_layers:
        if engine == "core":
            base = _run_core_flow(compiled, [], [])
            run = _run_core_flow(compiled, nodes, edges)
        else:
            base = _run_reference_flow(system, compiled, [], [])
            run = _run_reference_flow(system, compiled, nodes, edges)
        return CascadeResult(compiled, *run[:4], initial_nodes=nodes.astype(np.int64),
                             initial_edges=edges.astype(np.int64), baseline_working=base[0],
                             engine=engine, served=run[4], baseline_served=base[4], flows=run[5],
                             trips=run[6], _via=run[7])
    if engine == "core":
        ws = Workspace(compiled)
        baseline = _run_core(compiled, (), (), ws)[0]
        arrays = _run_core(compiled, nodes, edges, ws)
    else:
        baseline = _run_reference(system, compiled, [], [])[0]
        arrays = _run_reference(system, compiled, nodes, edges)
    return CascadeResult(compiled, *arrays, initial_nodes=nodes.astype(np.int64),
                         initial_edges=edges.astype(np.int64), baseline_working=baseline,
                         engine=engine)
