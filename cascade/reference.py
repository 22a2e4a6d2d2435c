"""The reference engine: docs/format.md's static cascade in plain Python and networkx.

Slow and obvious on purpose.  It reads the system's tables by name, never the compiled
arrays, so that it is an independent oracle for the Cython core and the baseline that the
benchmarks measure the core against.  Each round recomputes everything from scratch.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from .system import InfrastructureSystem


@dataclass
class ReferenceFailure:
    round: int
    cause: str                    # "initial", "dependency" or "disconnected"
    group: int | None = None      # position of the emptied group among the dependent's groups
    via: str | None = None        # the supplier of that group that failed last (first listed on a tie)


def supplier_groups(system: InfrastructureSystem) -> dict[str, list[list[str]]]:
    """Each dependent's groups in order of first appearance; each group's suppliers in table order."""
    groups: dict[str, dict[object, list[str]]] = {}
    for row, (dependent, supplier, group) in enumerate(
            zip(system.dependencies["dependent"], system.dependencies["supplier"],
                system.dependencies["group"])):
        key = group if group != "" else ("row", row)
        members = groups.setdefault(dependent, {}).setdefault(key, [])
        if supplier not in members:
            members.append(supplier)
    return {dependent: list(by_key.values()) for dependent, by_key in groups.items()}


def run_cascade(system: InfrastructureSystem, failed_nodes=(), failed_edges=()) -> dict[str, ReferenceFailure]:
    """Run the static cascade; return every node that stopped working.

    Parameters
    ----------
    system : InfrastructureSystem
    failed_nodes, failed_edges : iterable of str
        Names of the initially failed nodes and edges.

    Returns
    -------
    dict of str to ReferenceFailure
    """
    nodes = list(system.nodes["id"])
    order = {name: i for i, name in enumerate(nodes)}
    layer_of = dict(zip(system.nodes["id"], system.nodes["layer"]))
    sources = set(system.nodes.loc[system.nodes["kind"] == "source", "id"])
    rules = system.layer_rules()
    groups = supplier_groups(system)
    failed_edges = set(failed_edges)
    edges = [(u, v, d) for e, u, v, d in zip(system.edges["id"], system.edges["source"],
                                              system.edges["target"], system.edges["directed"])
             if e not in failed_edges]

    failures = {name: ReferenceFailure(0, "initial") for name in failed_nodes}
    working = set(nodes) - set(failures)
    rnd = 0
    while True:
        rnd += 1
        # Step 2: a node needs a working supplier in each of its groups (working after last round).
        candidates = set()
        for node in working:
            empty = [k for k, members in enumerate(groups.get(node, []))
                     if not any(s in working for s in members)]
            if empty:
                k = empty[0]
                last = [s for s in groups[node][k] if failures[s].round == rnd - 1]
                failures[node] = ReferenceFailure(rnd, "dependency", k, last[0])
            else:
                candidates.add(node)
        # Step 3: each layer's rule among the candidates, over usable edges.
        survivors = set()
        for layer, rule in rules.items():
            members = {v for v in candidates if layer_of[v] == layer}
            if rule == "none":
                survivors |= members
                continue
            graph = nx.DiGraph()
            graph.add_nodes_from(members)
            for u, v, directed in edges:
                if u in members and v in members:
                    graph.add_edge(u, v)
                    if not directed:
                        graph.add_edge(v, u)
            if rule == "source":
                for s in members & sources:
                    survivors |= {s} | nx.descendants(graph, s)
            elif members:
                components = list(nx.weakly_connected_components(graph))
                survivors |= max(components, key=lambda c: (len(c), -min(order[v] for v in c)))
        for node in candidates - survivors:
            failures[node] = ReferenceFailure(rnd, "disconnected")
        if survivors == working:
            return failures
        working = survivors
