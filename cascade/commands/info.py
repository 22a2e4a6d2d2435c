"""``cascade info SYSTEM``: layers, counts, rules, demand, and warnings."""
from __future__ import annotations

import click
import numpy as np

from ..simulation import simulate
from . import emit, format_option, load, output_option, system_argument, table, to_json


def describe(system, compiled) -> dict:
    """A summary of a system and the problems a user should know about."""
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


@click.command("info")
@system_argument
@format_option("table", "json")
@output_option
def command(system_dir, fmt, output):
    """Describe SYSTEM: layers, counts, rules, demand, couplings and warnings
    (such as nodes that can never work)."""
    system, compiled = load(system_dir)
    summary = describe(system, compiled)
    if fmt == "json":
        emit(to_json(summary), output)
        return
    out = [f"System {summary['system']}: {summary['nodes']} nodes, {summary['edges']} edges, "
           f"{summary['dependencies']} dependency rows in {summary['groups']} groups "
           f"({summary['groups_with_alternatives']} with alternative suppliers, "
           f"{summary['groups_with_backup']} with backup hours)"
           + (f"; CRS {summary['crs']}" if summary["crs"] else ""), ""]
    rows = [[name, d["rule"], d["nodes"], d["edges"], d["sources"], f"{d['demand']:,.0f}", d["never_work"]]
            for name, d in summary["layers"].items()]
    out.append(table(rows, ["layer", "rule", "nodes", "edges", "sources", "demand", "never work"],
                     "llrrrrr"))
    if summary["couplings"]:
        out.append("Dependencies (dependent layer <- supplier layer):")
        out += [f"  {k}: {v}" for k, v in summary["couplings"].items()]
        out.append("")
    if summary["warnings"]:
        out.append("Warnings:")
        out += [f"  - {w}" for w in summary["warnings"]]
    else:
        out.append("No warnings.")
    emit("\n".join(out) + "\n", output)
