"""``cascade info SYSTEM``: layers, counts, rules, demand, and warnings."""
from __future__ import annotations

import click

from ..summary import describe  # noqa: F401  (re-exported: the summary lives in the library)
from . import emit, format_option, load, output_option, system_argument, table, to_json


@click.command("info")
@system_argument
@format_option("table", "json")
@output_option
def command(system_dir, fmt, output):
    """Describe SYSTEM: layers, counts, rules, demand, couplings and warnings
    (such as nodes that can never work)."""
    system, compiled = load(system_dir)
    summary = describe(system, compiled)
    for name, d in summary["layers"].items():
        d["unit"] = system.layer_unit(name)       # of the layer's demand
        d["weight"] = system.layer_weight(name)   # where results add layers together
    summary["currency"] = system.currency         # of repair costs
    if fmt == "json":
        emit(to_json(summary), output)
        return
    out = [f"System {summary['system']}: {summary['nodes']} nodes, {summary['edges']} edges, "
           f"{summary['dependencies']} dependency rows in {summary['groups']} groups "
           f"({summary['groups_with_alternatives']} with alternative suppliers, "
           f"{summary['groups_with_backup']} with backup hours)"
           + (f"; CRS {summary['crs']}" if summary["crs"] else ""), ""]
    rows = [[name, d["rule"], d["nodes"], d["edges"], d["sources"], f"{d['demand']:,.0f}",
             d["unit"] or "(no unit)", f"{d['weight']:g}", d["never_work"]]
            for name, d in summary["layers"].items()]
    out.append(table(rows, ["layer", "rule", "nodes", "edges", "sources", "demand", "unit", "weight",
                            "nodes that never work"], "llrrrrllr"))
    out.append(f"Repair costs in {system.currency or '(no currency: set [system] currency)'}.")
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
