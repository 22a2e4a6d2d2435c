"""Hypothesis strategies for random coupled systems (several layers, directed edges, groups,
dependency cycles, explicit and default rules) and their initial failures."""
from __future__ import annotations

import pandas as pd
from hypothesis import strategies as st

from cascade import InfrastructureSystem


@st.composite
def systems(draw, max_layers=3, max_nodes=7):
    n_layers = draw(st.integers(1, max_layers))
    nodes, edges, deps, rules = [], [], [], {}
    layer_members = []
    for li in range(n_layers):
        layer = f"L{li}"
        size = draw(st.integers(1, max_nodes))
        members = [f"{layer}n{i}" for i in range(size)]
        layer_members.append(members)
        for name in members:
            nodes.append({"id": name, "layer": layer,
                          "kind": "source" if draw(st.booleans()) and draw(st.booleans()) else "",
                          "demand": draw(st.integers(0, 3))})
        n_edges = draw(st.integers(0, 2 * size))
        for e in range(n_edges):
            u = draw(st.sampled_from(members))
            v = draw(st.sampled_from(members))
            edges.append({"id": f"{layer}e{e}", "source": u, "target": v,
                          "directed": draw(st.booleans())})
        rule = draw(st.sampled_from([None, "source", "giant", "none"]))
        if rule:
            rules[layer] = rule
    # Nodes are shuffled so that layers interleave in file order (ties of `giant` depend on it).
    order = draw(st.permutations(range(len(nodes))))
    nodes = [nodes[i] for i in order]
    all_ids = [n["id"] for n in nodes]
    if len(all_ids) > 1:
        for _ in range(draw(st.integers(0, 2 * len(all_ids)))):
            dependent = draw(st.sampled_from(all_ids))
            supplier = draw(st.sampled_from([x for x in all_ids if x != dependent]))
            deps.append({"dependent": dependent, "supplier": supplier,
                         "group": draw(st.sampled_from(["", "", "g1", "g2"]))})
    system = InfrastructureSystem.from_tables(
        pd.DataFrame(nodes), pd.DataFrame(edges, columns=["id", "source", "target", "directed"]),
        pd.DataFrame(deps, columns=["dependent", "supplier", "group"]), rules=rules)
    failed_nodes = draw(st.lists(st.sampled_from(all_ids), max_size=3, unique=True))
    edge_ids = [e["id"] for e in edges]
    failed_edges = draw(st.lists(st.sampled_from(edge_ids), max_size=3, unique=True)) if edge_ids else []
    return system, failed_nodes, failed_edges
