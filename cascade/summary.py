"""A system's summary: counts, rules, demand, couplings and warnings (``cascade info``)."""
from __future__ import annotations

import numpy as np

from .compiled import CompiledSystem, compile_system
from .simulation import simulate
from .system import InfrastructureSystem


def describe(system: InfrastructureSystem, compiled: CompiledSystem | None = None) -> dict:
    """A summary of a system and the problems a user should know about.

    The numbers and warnings of ``cascade info`` (and of the report's first section):
    per layer its rule, node, edge and source counts, demand and the nodes that never work
    even with nothing failed; the couplings between layers; and warnings.

    Returns
    -------
    dict
        ``system``, ``crs``, ``nodes``, ``edges``, ``dependencies``, ``groups``,
        ``groups_with_alternatives``, ``groups_with_backup``, ``layers`` (name -> dict),
        ``couplings`` ("dependent <- supplier" -> rows) and ``warnings`` (list of str).  A
        ``flow``/``dcflow`` layer also has ``service``: its served amount / demand in the intact
        system; the warnings name flow layers that fall short (with the bottleneck pipes of a
        ``flow`` layer, :mod:`cascade.routing`) and branches that trip with nothing failed.
    """
    compiled = compiled if compiled is not None else compile_system(system)
    rules = system.layer_rules()
    intact = simulate(system, compiled=compiled)
    warnings = []
    layers = {}
    for i, name in enumerate(compiled.layer_names):
        in_layer = compiled.node_layer == i
        n_edges = int(np.sum(compiled.node_layer[compiled.edge_src] == i)) if compiled.n_edges else 0
        sources = int(np.sum(compiled.is_source[in_layer]))
        dead = ~intact.working & in_layer
        layers[name] = {"nodes": int(in_layer.sum()), "edges": n_edges, "sources": sources,
                        "rule": rules[name], "demand": float(compiled.demand[in_layer].sum()),
                        "never_work": int(dead.sum())}
        if not in_layer.any():
            warnings.append(f"layer '{name}' is named in system.toml but has no nodes")
        elif rules[name] == "source" and sources == 0:
            warnings.append(f"layer '{name}' has rule 'source' but no node of kind 'source': "
                            "none of its nodes can work")
        elif dead.any():
            examples = ", ".join(str(x) for x in compiled.node_ids[dead][:5])
            more = f" and {int(dead.sum()) - 5} more" if dead.sum() > 5 else ""
            warnings.append(f"{int(dead.sum())} node(s) of layer '{name}' can never work, even with "
                            f"nothing failed: {examples}{more}")
    warnings += system.fallback_warnings()
    if intact.served is not None:
        # Flow layers: what the intact system delivers, and branches it overloads already.
        service = intact.layers()["service"]
        for i, name in enumerate(compiled.layer_names):
            if rules[name] in ("flow", "dcflow"):
                layers[name]["service"] = None if np.isnan(service[name]) else float(service[name])
                if service[name] < 1 - 1e-9:
                    why = ""
                    if rules[name] == "flow":
                        # the pipes that limit it (cascade.routing): full in every routing
                        neck = np.flatnonzero(intact.routing().bottleneck
                                              & (compiled.node_layer[compiled.edge_src] == i))
                        if len(neck):
                            more = f" and {len(neck) - 5} more" if len(neck) > 5 else ""
                            why = ("; bottleneck pipe(s), full in every routing: "
                                   + ", ".join(str(x) for x in compiled.edge_ids[neck[:5]]) + more)
                    warnings.append(f"layer '{name}' serves {100 * service[name]:.1f}% of its demand "
                                    f"with nothing failed{why}")
        if len(intact.trips):
            ids = ", ".join(str(x) for x in intact.trips["id"][:5])
            more = f" and {len(intact.trips) - 5} more" if len(intact.trips) > 5 else ""
            warnings.append(f"{len(intact.trips)} branch(es) trip on overload with nothing failed: {ids}{more}")
    both = sorted(set(compiled.node_ids) & set(compiled.edge_ids))
    if both:
        warnings.append(f"{len(both)} id(s) name both a node and an edge (--fail takes the node): "
                        + ", ".join(both[:5]))
    deps = system.dependencies
    coupled = {}
    for dep_layer, sup_layer in zip(deps["dependent"].map(dict(zip(system.nodes["id"], system.nodes["layer"]))),
                                    deps["supplier"].map(dict(zip(system.nodes["id"], system.nodes["layer"])))):
        key = f"{dep_layer} <- {sup_layer}"
        coupled[key] = coupled.get(key, 0) + 1
    with_backup = int(np.sum(compiled.group_delay > 0))
    alternatives = int(np.sum(np.diff(compiled.sup_ptr) > 1))
    return {"system": system.name, "crs": system.crs, "nodes": compiled.n_nodes,
            "edges": compiled.n_edges, "dependencies": len(deps), "groups": compiled.n_groups,
            "groups_with_alternatives": alternatives, "groups_with_backup": with_backup,
            "layers": layers, "couplings": dict(sorted(coupled.items())), "warnings": warnings}
