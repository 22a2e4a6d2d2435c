"""The reference engine for flow layers (docs/format.md (v2)), written plainly and by name.

Like :mod:`cascade.reference` it reads the system's tables, never the compiled arrays, and
recomputes everything in every round, so that it is an independent oracle for the compiled
flow kernels.  The v1 fixpoint is extended with served fractions and dependency thresholds:

* ``flow`` layers: a node works when it is reachable from a working source over usable edges
  of non-zero capacity.  The served amounts are the max-min fair allocation by priority class
  (the lexicographically best vector of the polymatroid of deliverable amounts): networkx's
  maximum flow first (when it serves every demand in full there is nothing to share), else
  progressive filling with one linear program per step (scipy's HiGHS): maximise the common
  fraction t of the class's unfrozen nodes, then freeze every node that a second LP shows
  cannot rise above t while the others keep t (Megiddo 1974, "Optimal flows in networks with
  multiple sources and sinks"; Fujishige 1980, lexicographically optimal bases of polymatroids).
* ``dcflow`` layers: islands (connected components over usable branches), proportional load
  shedding by priority class, generators sharing the served total (by supply, or from their
  dispatch), the DC power flow of each island by a dense ``numpy.linalg.solve`` with the first
  bus's angle fixed at 0, and every overloaded branch tripping at once, repeated inside the
  round until none is overloaded.

Slow and obvious on purpose: dense matrices, one LP per node per filling step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
from scipy.optimize import linprog

from .reference import ReferenceFailure
from .system import FLOW_RULES, InfrastructureSystem

TOLERANCE = 1e-9          # docs/format.md: thresholds and overloads are compared with this slack


@dataclass
class Trip:
    """A branch of a ``dcflow`` layer that tripped on overload."""

    edge: str
    layer: str
    round: int
    step: int                 # 1, 2, ... counted afresh in each round
    flow: float               # signed source -> target, at the moment of the trip
    capacity: float


@dataclass
class FlowOutcome:
    """What :func:`run_flow_cascade` returns.

    Attributes
    ----------
    failures : dict of str to ReferenceFailure
        Every node that stopped working (as :func:`cascade.reference.run_cascade`).
    served : dict of str to float
        Served fraction of every working node: x/d in flow layers (1 without demand), 1 in v1 layers.
    flows : dict of str to float
        Flow of every usable branch of a ``dcflow`` layer in the final state, in the layer's unit.
    trips : list of Trip
        In order of round, step and edge file order.
    """

    failures: dict[str, ReferenceFailure]
    served: dict[str, float]
    flows: dict[str, float] = field(default_factory=dict)
    trips: list[Trip] = field(default_factory=list)


# --------------------------------------------------------------------------- tables by name
def _column(table, name, default):
    return table[name].tolist() if name in table.columns else [default] * len(table)


def _groups(system: InfrastructureSystem) -> dict[str, list[list[tuple[str, float]]]]:
    """Each dependent's groups in order of first appearance: (supplier, threshold) in table order
    (a supplier named twice in a group keeps its smallest threshold)."""
    deps = system.dependencies
    groups: dict[str, dict[object, dict[str, float]]] = {}
    for row, (dependent, supplier, group, threshold) in enumerate(zip(
            deps["dependent"], deps["supplier"], deps["group"], _column(deps, "threshold", 1.0))):
        key = group if group != "" else ("row", row)
        members = groups.setdefault(dependent, {}).setdefault(key, {})
        members[supplier] = min(members.get(supplier, math.inf), float(threshold))
    return {d: [list(m.items()) for m in by_key.values()] for d, by_key in groups.items()}


def _priorities(system: InfrastructureSystem) -> dict[str, int]:
    nodes = system.nodes
    if "priority" in nodes.columns:
        return dict(zip(nodes["id"], (int(p) for p in nodes["priority"])))
    suppliers = set(system.dependencies["supplier"])
    return {v: int(v in suppliers) for v in nodes["id"]}


# --------------------------------------------------------------------------- the fixpoint
def run_flow_cascade(system: InfrastructureSystem, failed_nodes=(), failed_edges=()) -> FlowOutcome:
    """Run the static cascade of docs/format.md (v2) from failed nodes and edges (names).

    A system without flow layers gives the same failures as :func:`cascade.reference.run_cascade`.

    Returns
    -------
    FlowOutcome
    """
    nodes = list(system.nodes["id"])
    layer_of = dict(zip(system.nodes["id"], system.nodes["layer"]))
    demand = dict(zip(system.nodes["id"], system.nodes["demand"].astype(float)))
    supply = dict(zip(system.nodes["id"], (float(s) for s in _column(system.nodes, "supply", 0.0))))
    dispatch = dict(zip(system.nodes["id"], (float(s) for s in _column(system.nodes, "dispatch", math.nan))))
    priority = _priorities(system)
    order = {name: i for i, name in enumerate(nodes)}
    sources = set(system.nodes.loc[system.nodes["kind"] == "source", "id"])
    rules = system.layer_rules()
    groups = _groups(system)
    failed_edges = set(failed_edges)
    edges = []
    for e, u, v, d, cap, x, shift in zip(
            system.edges["id"], system.edges["source"], system.edges["target"], system.edges["directed"],
            _column(system.edges, "capacity", math.nan), _column(system.edges, "reactance", math.nan),
            _column(system.edges, "shift", 0.0)):
        if e not in failed_edges:
            edges.append({"id": e, "u": u, "v": v, "directed": bool(d), "layer": layer_of[u],
                          "capacity": math.inf if math.isnan(cap) else float(cap),
                          "reactance": float(x), "shift": math.radians(float(shift))})
    tables = dict(layer_of=layer_of, demand=demand, supply=supply, dispatch=dispatch,
                  priority=priority, order=order, base={layer: system.layer_base(layer) for layer in rules})

    failures = {name: ReferenceFailure(0, "initial") for name in failed_nodes}
    working = set(nodes) - set(failures)
    frac = {v: 1.0 for v in working}
    before_working, before_frac = set(nodes), {v: 1.0 for v in nodes}   # the state before round 1
    tripped: set[str] = set()
    trips: list[Trip] = []
    flows: dict[str, float] = {}

    def counts(s, threshold, state_working, state_frac):
        return s in state_working and state_frac[s] >= threshold - TOLERANCE

    def counted(state_working, state_frac):
        return {(s, t) for gs in groups.values() for members in gs for s, t in members
                if counts(s, t, state_working, state_frac)}

    rnd = 0
    while True:
        rnd += 1
        # Step 2: each group needs a supplier that works at a fraction >= the row's threshold.
        candidates = set()
        for node in working:
            empty = [k for k, members in enumerate(groups.get(node, []))
                     if not any(counts(s, t, working, frac) for s, t in members)]
            if empty:
                k = empty[0]
                last = [s for s, t in groups[node][k]
                        if counts(s, t, before_working, before_frac)]
                failures[node] = ReferenceFailure(rnd, "dependency", k, last[0] if last else None)
            else:
                candidates.add(node)
        # Step 3: each layer's rule among the candidates, over usable edges.
        survivors, new_frac, round_trips = set(), {}, []
        usable = [e for e in edges if e["id"] not in tripped and e["u"] in candidates and e["v"] in candidates]
        for layer, rule in rules.items():
            members = {v for v in candidates if layer_of[v] == layer}
            here = [e for e in usable if e["layer"] == layer]
            if rule in FLOW_RULES:
                here = [e for e in here if e["capacity"] > 0]
            if rule == "flow":
                alive, fractions = _flow_rule(members, here, tables)
            elif rule == "dcflow":
                alive, fractions, layer_flows, layer_trips = _dcflow_rule(layer, members, here, tables, rnd)
                round_trips += layer_trips
                tripped |= {t.edge for t in layer_trips}
                flows = _replace_layer(flows, layer_flows, layer, edges)
            else:
                alive = _connectivity_rule(rule, members, here, sources, order)
                fractions = {v: 1.0 for v in alive}
            survivors |= alive
            new_frac.update(fractions)
        trips += round_trips
        for node in candidates - survivors:
            failures[node] = ReferenceFailure(rnd, "disconnected")
        if survivors == working and not round_trips and counted(survivors, new_frac) == counted(working, frac):
            return FlowOutcome(failures, new_frac, flows, trips)
        before_working, before_frac = working, frac
        working, frac = survivors, new_frac


def _replace_layer(flows: dict, layer_flows: dict, layer: str, edges: list) -> dict:
    """``flows`` with the entries of ``layer`` replaced by this round's."""
    of_layer = {e["id"] for e in edges if e["layer"] == layer}
    return {**{e: f for e, f in flows.items() if e not in of_layer}, **layer_flows}


def _connectivity_rule(rule, members, edges, sources, order) -> set:
    """The v1 rules ``source``, ``giant`` and ``none`` (as :func:`cascade.reference.run_cascade`)."""
    if rule == "none":
        return set(members)
    graph = nx.DiGraph()
    graph.add_nodes_from(members)
    for e in edges:
        graph.add_edge(e["u"], e["v"])
        if not e["directed"]:
            graph.add_edge(e["v"], e["u"])
    if rule == "source":
        alive = set()
        for s in members & sources:
            alive |= {s} | nx.descendants(graph, s)
        return alive
    if not members:
        return set()
    components = list(nx.weakly_connected_components(graph))
    return max(components, key=lambda c: (len(c), -min(order[v] for v in c)))


# --------------------------------------------------------------------------- flow rule
def _flow_rule(members, edges, tables) -> tuple[set, dict]:
    """``flow``: reachability from the sources, then the max-min fair served fractions."""
    supply, demand = tables["supply"], tables["demand"]
    graph = nx.DiGraph()
    graph.add_nodes_from(members)
    for e in edges:
        graph.add_edge(e["u"], e["v"])
        if not e["directed"]:
            graph.add_edge(e["v"], e["u"])
    alive = set()
    for s in (v for v in members if supply[v] > 0):
        alive |= {s} | nx.descendants(graph, s)
    arcs = []                                   # (tail, head, capacity) among working nodes
    for e in edges:
        if e["u"] in alive and e["v"] in alive:
            arcs.append((e["u"], e["v"], e["capacity"]))
            if not e["directed"]:
                arcs.append((e["v"], e["u"], e["capacity"]))
    amounts = fair_allocation(sorted(alive, key=tables["order"].get), arcs, supply, demand,
                              tables["priority"])
    return alive, {v: (amounts[v] / demand[v] if demand[v] > 0 else 1.0) for v in alive}


def max_flow_value(nodes, arcs, supply, demand) -> float:
    """networkx's maximum flow from every source (at most its supply) to every demand."""
    graph = nx.DiGraph()
    top, bottom = ("source",), ("sink",)
    graph.add_nodes_from([top, bottom])
    for v in nodes:
        if supply[v] > 0:
            graph.add_edge(top, ("node", v), capacity=supply[v])
        if demand[v] > 0:
            graph.add_edge(("node", v), bottom, capacity=demand[v])
    for u, v, cap in arcs:
        a, b = ("node", u), ("node", v)
        if a == b:
            continue
        if graph.has_edge(a, b):
            if "capacity" in graph[a][b]:
                if math.isinf(cap):
                    del graph[a][b]["capacity"]
                else:
                    graph[a][b]["capacity"] += cap
        elif math.isinf(cap):
            graph.add_edge(a, b)
        else:
            graph.add_edge(a, b, capacity=cap)
    return float(nx.maximum_flow_value(graph, top, bottom))


def fair_allocation(nodes, arcs, supply, demand, priority) -> dict[str, float]:
    """Served amounts: each priority class (highest first) as fully as possible, max-min fair
    in the served fraction within a class.

    Parameters
    ----------
    nodes : list of str
        The working nodes of a ``flow`` layer.
    arcs : list of (str, str, float)
        Usable arcs among them with their capacity (inf = unlimited); an undirected edge is
        given as two arcs.
    supply, demand, priority : dict
        By node name.

    Returns
    -------
    dict of str to float
        Served amount of every node of ``nodes`` (0 for nodes without demand).
    """
    wanted = [v for v in nodes if demand[v] > 0]
    total = sum(demand[v] for v in wanted)
    if not wanted:
        return {v: 0.0 for v in nodes}
    if max_flow_value(nodes, arcs, supply, demand) >= total * (1 - 1e-12):
        return {v: (demand[v] if demand[v] > 0 else 0.0) for v in nodes}
    lp = _AllocationLP(nodes, arcs, supply, demand, wanted)
    fixed: dict[str, float] = {}
    for level in sorted({priority[v] for v in wanted}, reverse=True):
        unfrozen = [v for v in wanted if priority[v] == level]
        while unfrozen:
            t, amounts = lp.best_common_fraction(unfrozen, fixed)
            if t >= 1 - 1e-12:
                fixed.update({v: demand[v] for v in unfrozen})
                break
            # A node already above t in that optimum can rise (the optimum is the witness);
            # every other one gets the second LP.
            slack = {v: TOLERANCE * max(1.0, demand[v]) for v in unfrozen}
            stuck = [v for v in unfrozen if amounts[v] <= t * demand[v] + slack[v]
                     and lp.most_for(v, unfrozen, fixed, t) <= t * demand[v] + slack[v]]
            if not stuck:               # numerical noise only: t is as high as it goes for all
                stuck = list(unfrozen)
            fixed.update({v: t * demand[v] for v in stuck})
            unfrozen = [v for v in unfrozen if v not in stuck]
    return {v: fixed.get(v, 0.0) for v in nodes}


class _AllocationLP:
    """The deliverable set as LP constraints: arc flows, injections and served amounts.

    Variables: one flow per arc in [0, capacity], one injection per source in [0, supply],
    one served amount per demand node in [0, demand], and a common fraction t.  Conservation
    at every node: inflow - outflow + injection - served = 0.
    """

    def __init__(self, nodes, arcs, supply, demand, wanted):
        index = {v: i for i, v in enumerate(nodes)}
        self.wanted = wanted
        self.demand = demand
        suppliers = [v for v in nodes if supply[v] > 0]
        na, ns, nx_ = len(arcs), len(suppliers), len(wanted)
        self.x0 = na + ns
        self.t = na + ns + nx_
        nvar = self.t + 1
        a_eq = np.zeros((len(nodes), nvar))
        for k, (u, v, _) in enumerate(arcs):
            a_eq[index[u], k] -= 1
            a_eq[index[v], k] += 1
        for k, v in enumerate(suppliers):
            a_eq[index[v], na + k] += 1
        for k, v in enumerate(wanted):
            a_eq[index[v], self.x0 + k] -= 1
        self.a_eq = a_eq
        self.bounds = ([(0, None if math.isinf(cap) else cap) for _, _, cap in arcs]
                       + [(0, supply[v]) for v in suppliers]
                       + [(0, demand[v]) for v in wanted] + [(0, 1)])
        self.pos = {v: self.x0 + k for k, v in enumerate(wanted)}

    def _solve(self, objective, unfrozen, fixed, t_bounds):
        c = np.zeros(self.t + 1)
        c[objective] = -1.0
        # x_i >= t d_i for the unfrozen nodes:  t d_i - x_i <= 0
        a_ub = np.zeros((len(unfrozen), self.t + 1))
        for r, v in enumerate(unfrozen):
            a_ub[r, self.pos[v]] = -1.0
            a_ub[r, self.t] = self.demand[v]
        for slack in (0.0, 1e-9):       # a frozen amount may need a hair of room after rounding
            bounds = list(self.bounds)
            for v, amount in fixed.items():
                bounds[self.pos[v]] = (max(0.0, amount * (1 - slack) - slack), amount)
            bounds[self.t] = t_bounds
            res = linprog(c, A_ub=a_ub, b_ub=np.zeros(len(unfrozen)), A_eq=self.a_eq,
                          b_eq=np.zeros(len(self.a_eq)), bounds=bounds, method="highs")
            if res.status == 0:
                return res
        raise RuntimeError(f"allocation LP failed: {res.message}")

    def best_common_fraction(self, unfrozen, fixed) -> tuple[float, dict]:
        """The largest t with every unfrozen node served t of its demand, frozen ones fixed;
        and the served amounts of the unfrozen nodes in that optimum."""
        x = self._solve(self.t, unfrozen, fixed, (0, 1)).x
        return float(min(1.0, max(0.0, x[self.t]))), {v: float(x[self.pos[v]]) for v in unfrozen}

    def most_for(self, node, unfrozen, fixed, t) -> float:
        """The most ``node`` can get while every other unfrozen node keeps t of its demand."""
        return float(self._solve(self.pos[node], unfrozen, fixed, (t, t)).x[self.pos[node]])


# --------------------------------------------------------------------------- dcflow rule
def _dcflow_rule(layer, members, edges, tables, rnd):
    """``dcflow``: islands, shedding, generator sharing, DC flows and trips to a fixpoint.

    Returns (working buses, fractions, flows of usable branches, trips of this round).
    """
    order = tables["order"]
    base = tables["base"][layer]
    live = list(edges)                                  # the layer's usable branches in file order
    trips = []
    step = 0
    while True:
        graph = nx.Graph()
        graph.add_nodes_from(members)
        graph.add_edges_from((e["u"], e["v"]) for e in live)
        alive, fractions, flows = set(), {}, {}
        for island in nx.connected_components(graph):
            buses = sorted(island, key=order.get)
            gens = [v for v in buses if tables["supply"][v] > 0]
            if not gens:
                continue                            # stranded without supply: disconnected
            alive |= island
            served = _shed(buses, tables)
            fractions.update({v: (served[v] / tables["demand"][v] if tables["demand"][v] > 0 else 1.0)
                              for v in buses})
            output = _share(gens, sum(served.values()), tables)
            injection = {v: output.get(v, 0.0) - served[v] for v in buses}
            branches = [e for e in live if e["u"] in island]
            flows.update(dc_power_flow(buses, branches, injection, base))
        over = [e for e in live if e["id"] in flows and abs(flows[e["id"]]) > e["capacity"] * (1 + TOLERANCE)]
        if not over:
            return alive, fractions, flows, trips
        step += 1
        trips += [Trip(e["id"], layer, rnd, step, flows[e["id"]], e["capacity"]) for e in over]
        gone = {e["id"] for e in over}
        live = [e for e in live if e["id"] not in gone]


def _shed(buses, tables) -> dict[str, float]:
    """Served amounts of an island: priority classes in order, each at min(1, left / its demand)."""
    demand, priority = tables["demand"], tables["priority"]
    left = sum(tables["supply"][v] for v in buses)
    served = {v: 0.0 for v in buses}
    for level in sorted({priority[v] for v in buses}, reverse=True):
        members = [v for v in buses if priority[v] == level and demand[v] > 0]
        need = sum(demand[v] for v in members)
        if need <= 0:
            continue
        fraction = min(1.0, left / need)
        for v in members:
            served[v] = fraction * demand[v]
        left = max(0.0, left - fraction * need)
    return served


def _share(gens, total, tables) -> dict[str, float]:
    """Each working generator's output when the island's generators deliver ``total``."""
    supply, dispatch = tables["supply"], tables["dispatch"]
    if all(math.isnan(dispatch[g]) for g in gens):
        capacity = sum(supply[g] for g in gens)
        return {g: total * supply[g] / capacity for g in gens}
    setpoint = sum(dispatch[g] for g in gens)
    headroom = sum(supply[g] - dispatch[g] for g in gens)
    if total > setpoint and headroom > 0:      # without headroom, total > setpoint is rounding
        return {g: dispatch[g] + (total - setpoint) * (supply[g] - dispatch[g]) / headroom for g in gens}
    if total < setpoint:
        return {g: dispatch[g] * total / setpoint for g in gens}
    return {g: dispatch[g] for g in gens}


def dc_power_flow(buses, branches, injection, base) -> dict[str, float]:
    """Branch flows of one island by a dense solve of B θ = P / base + Aᵀ D φ, θ of ``buses[0]`` = 0.

    flow = base · (θ_u − θ_v − φ) / x, positive from ``u`` (the ``source`` column) to ``v``.

    Parameters
    ----------
    buses : list of str
        The island's buses; the first one's angle is fixed at 0.
    branches : list of dict
        With ``id``, ``u``, ``v``, ``reactance`` (per unit) and ``shift`` (radians).
    injection : dict of str to float
        Net injection of each bus in the layer's unit (summing to 0).
    base : float
        The layer's per-unit base.
    """
    index = {v: i for i, v in enumerate(buses)}
    k = len(buses)
    b = np.zeros((k, k))
    rhs = np.array([injection[v] / base for v in buses], float)
    for e in branches:
        i, j = index[e["u"]], index[e["v"]]
        if i == j:
            continue
        y = 1.0 / e["reactance"]
        b[i, i] += y
        b[j, j] += y
        b[i, j] -= y
        b[j, i] -= y
        rhs[i] += y * e["shift"]
        rhs[j] -= y * e["shift"]
    theta = np.zeros(k)
    if k > 1:
        theta[1:] = np.linalg.solve(b[1:, 1:], rhs[1:])
    return {e["id"]: base * (theta[index[e["u"]]] - theta[index[e["v"]]] - e["shift"]) / e["reactance"]
            for e in branches}
