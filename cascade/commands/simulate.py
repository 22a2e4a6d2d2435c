"""``cascade simulate SYSTEM --fail ID ...``: one static cascade across all lifelines."""
from __future__ import annotations

import io
from pathlib import Path

import click
import numpy as np
import pandas as pd

from ..compiled import FLOW_CODES, RULE_CODES
from ..simulation import simulate
from . import (csv_safe_option, csv_text, emit, engine_option, failure_ids, format_option, load,
               output_option, pct, system_argument, table, to_json)

SHOWN_PER_ROUND = 12
SHOWN_BRANCHES = 10


def _amount(x: float, unit: str) -> str:
    return f"{x:,.1f} {unit}".rstrip()


def render_table(result, system=None) -> str:
    """The table of ``cascade simulate``; ``system`` gives the layers' units (flow systems)."""
    before, after = result.layers(before=True), result.layers()
    data = result.to_dict()
    init = data["initial_failures"]
    tripped = f", {len(data['tripped'])} branch(es) tripped on overload" if data.get("tripped") else ""
    c = result.compiled
    flow_layers = {name for name, code in zip(c.layer_names, c.layer_rule) if code in FLOW_CODES}
    lost = _service_lost(result, before, after, system, flow_layers) if flow_layers else ""
    out = [f"System {data['system']}: failed {len(init['nodes'])} node(s) and {len(init['edges'])} edge(s); "
           f"the cascade ran {data['rounds']} round(s), {len(data['failed'])} node(s) stopped working"
           f"{tripped}{lost}.", ""]
    rows = []
    unit = (system.layer_unit if system is not None else (lambda layer: "")) if flow_layers else None
    for name in after.index:
        b, a = before.loc[name], after.loc[name]
        u = (system.layer_unit(name) if system is not None else "") or "(no unit)"
        served = (f"{a.demand_served:,.0f}/{a.demand:,.0f} {u}" if name not in flow_layers else
                  f"{a.demand_served:,.1f}/{a.demand:,.1f} {u}")
        rows.append([name, f"{int(a.functioning)}/{int(a.nodes)}", served, pct(b.service), pct(a.service)])
    out.append(table(rows, ["layer", "nodes working", "demand served (layer's unit)",
                            "service before", "service after"], "lrrrr"))
    if flow_layers:
        out += _branch_lines(result, unit)
    failed = result.failed()
    if len(failed):
        out.append("Failure chain:")
        for rnd, group in failed.groupby("round", sort=True):
            causes = group.groupby("cause", sort=False)
            parts = []
            for cause, rows_ in causes:
                names = [f"{r.id} (via {r.via})" if r.via else str(r.id)
                         for r in rows_.head(SHOWN_PER_ROUND).itertuples()]
                more = f" … and {len(rows_) - SHOWN_PER_ROUND} more" if len(rows_) > SHOWN_PER_ROUND else ""
                layers = ", ".join(f"{k} {v}" for k, v in rows_["layer"].value_counts().sort_index().items())
                parts.append(f"    {cause} [{layers}]: " + ", ".join(names) + more)
            out.append(f"  round {rnd}: {len(group)} node(s)")
            out += parts
    return "\n".join(out) + "\n"


def _served_in_part(result) -> np.ndarray:
    """Working nodes of flow layers with demand, served below it (ascending node index)."""
    c = result.compiled
    return np.flatnonzero(np.isin(c.layer_rule[c.node_layer], FLOW_CODES) & result.working
                          & (c.demand > 0) & (result.served < 1 - 1e-9))


def _service_lost(result, before, after, system, flow_layers) -> str:
    """The summary's clause on a system with flow layers, where nodes can keep working at part
    of their demand: how many are served in part, and per layer the demand served before and
    no longer served after, in the layer's unit (with the fraction of what was served)."""
    short = _served_in_part(result)
    parts = []
    for name in after.index:
        was, now = float(before.loc[name, "demand_served"]), float(after.loc[name, "demand_served"])
        gone = was - now
        if gone <= 1e-9 * max(was, 1.0):
            continue
        fmt = "{:,.1f}" if name in flow_layers else "{:,.0f}"
        unit = (system.layer_unit(name) if system is not None else "") or "(no unit)"
        parts.append(f"{name} {fmt.format(gone)} of {fmt.format(was)} {unit} ({100 * gone / was:.1f}%)")
    text = f", {short.size} node(s) served in part"
    return text + ("; demand no longer served: " + ", ".join(parts) if parts else "")


def _branch_lines(result, unit) -> list[str]:
    """Tripped branches with their loading at the trip, then the most loaded branches left."""
    c = result.compiled
    out = []
    short = _served_in_part(result)
    if short.size:
        out.append("Served below demand (working nodes; served / demand):")
        for layer in sorted({int(c.node_layer[v]) for v in short}):
            name = c.layer_names[layer]
            here = short[c.node_layer[short] == layer]
            here = here[np.lexsort((here, result.served[here]))]
            parts = [f"{c.node_ids[v]} {_amount(result.served[v] * c.demand[v], '')}/"
                     f"{_amount(c.demand[v], unit(name))} ({100 * result.served[v]:.1f}%)"
                     for v in here[:SHOWN_PER_ROUND]]
            more = f" … and {here.size - SHOWN_PER_ROUND} more" if here.size > SHOWN_PER_ROUND else ""
            out.append(f"  {name}: " + ", ".join(parts) + more)
        out.append("")
    trips = result.trips
    if trips is not None and len(trips):
        out.append("Tripped on overload (flow at the trip / capacity = loading):")
        for r in trips.itertuples(index=False):
            out.append(f"  round {r.round}, step {r.step}: {r.id} [{r.layer}] {_amount(r.flow, unit(r.layer))}"
                       f" / {_amount(r.capacity, unit(r.layer))} = {100 * abs(r.flow) / r.capacity:.1f}%")
        out.append("")
    flows = result.flows
    rated = np.flatnonzero(~np.isnan(flows) & np.isfinite(c.edge_capacity) & (c.edge_capacity > 0)) \
        if flows is not None else np.zeros(0, int)
    if rated.size:
        loading = np.abs(flows[rated]) / c.edge_capacity[rated]
        top = rated[np.lexsort((rated, -loading))][:SHOWN_BRANCHES]
        out.append(f"Most loaded branches after the cascade ({min(SHOWN_BRANCHES, rated.size)} of "
                   f"{rated.size} rated, flow / capacity = loading):")
        for e in top:
            layer = c.layer_names[c.node_layer[c.edge_src[e]]]
            out.append(f"  {c.edge_ids[e]} [{layer}] {_amount(flows[e], unit(layer))} / "
                       f"{_amount(c.edge_capacity[e], unit(layer))} = {100 * abs(flows[e]) / c.edge_capacity[e]:.1f}%")
        out.append("")
    if (c.layer_rule == RULE_CODES["flow"]).any():
        neck = np.flatnonzero(result.routing().bottleneck)
        if neck.size:
            out.append(f"Bottleneck pipes ({neck.size}; at capacity in every routing of the served amounts, "
                       "a smaller capacity would serve some node less):")
            parts = [f"{c.edge_ids[e]} [{c.layer_names[c.node_layer[c.edge_src[e]]]}] "
                     f"{_amount(c.edge_capacity[e], unit(c.layer_names[c.node_layer[c.edge_src[e]]]))}"
                     for e in neck[:SHOWN_BRANCHES]]
            more = f" … and {neck.size - SHOWN_BRANCHES} more" if neck.size > SHOWN_BRANCHES else ""
            out += ["  " + ", ".join(parts) + more, ""]
    return out


def _g(x) -> float:
    """10 significant digits: what the engines agree on, without float noise (95.99999999999996)."""
    return float(f"{float(x):.10g}")


def _unit_label(system, layer: str) -> str:
    """The unit part of a CSV header: ``(MW)``; a layer without a unit gets its own columns,
    ``(LAYER: no unit)``, so that two such layers never share one."""
    unit = system.layer_unit(layer)
    return f"({unit})" if unit else f"({layer}: no unit)"


def flow_csv_frame(result, system) -> pd.DataFrame:
    """The CSV of a system with flow layers: one row per node that stopped working, per flow
    node served below its demand, per edge failed at the start and per branch tripped on
    overload.  Amounts are in one column per unit of the flow layers, named with it
    (``served (MW)``, ``demand (m3/h)``; flows and capacities of the ``dcflow`` layers'
    branches likewise), so no column mixes units; ``loading`` is |flow| / capacity at the trip.
    Numbers have 10 significant digits (the JSON has them all)."""
    c = result.compiled
    is_flow = np.isin(c.layer_rule, FLOW_CODES)
    flow_units = list(dict.fromkeys(_unit_label(system, n) for n, f in zip(c.layer_names, is_flow) if f))
    dc_units = list(dict.fromkeys(_unit_label(system, n) for n, code in zip(c.layer_names, c.layer_rule)
                                  if code == RULE_CODES["dcflow"]))
    amount_cols = [f"{q} {u}" for u in flow_units for q in ("served", "demand")]
    branch_cols = [f"{q} {u}" for u in dc_units for q in ("flow", "capacity")]
    columns = (["id", "element", "layer", "status", "round", "step", "cause", "via", "group",
                "served_fraction"] + amount_cols + branch_cols + ["loading"])
    rows = []

    def node_row(v, status, **extra):
        layer = int(c.node_layer[v])
        row = {"id": c.node_ids[v], "element": "node", "layer": c.layer_names[layer], "status": status,
               "served_fraction": _g(result.served[v]), **extra}
        if is_flow[layer]:
            unit = _unit_label(system, c.layer_names[layer])
            row[f"served {unit}"] = _g(result.served[v] * c.demand[v])
            row[f"demand {unit}"] = _g(c.demand[v])
        return row

    failed = result.failed()
    where = np.flatnonzero(~result.working)             # the rows of failed(), in its order
    where = where[np.lexsort((where, result.fail_round[where]))]
    for v, r in zip(where, failed.itertuples(index=False)):
        rows.append(node_row(v, "stopped", round=int(r.round), cause=r.cause, via=r.via, group=r.group))
    short = np.flatnonzero(is_flow[c.node_layer] & result.working & (c.demand > 0)
                           & (result.served < 1 - 1e-9))
    short = short[np.lexsort((short, result.served[short], c.node_layer[short]))]
    rows += [node_row(v, "partial") for v in short]
    for e in result.initial_edges:
        layer = c.layer_names[c.node_layer[c.edge_src[e]]]
        rows.append({"id": c.edge_ids[e], "element": "edge", "layer": layer, "status": "failed",
                     "round": 0, "cause": "initial"})
    if result.trips is not None:
        for t in result.trips.itertuples(index=False):
            unit = _unit_label(system, t.layer)
            rows.append({"id": t.id, "element": "edge", "layer": t.layer, "status": "tripped",
                         "round": int(t.round), "step": int(t.step), f"flow {unit}": _g(t.flow),
                         f"capacity {unit}": _g(t.capacity),
                         "loading": _g(abs(float(t.flow)) / float(t.capacity))})
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    for col in columns[4:6]:                                  # round, step: integers or empty
        frame[col] = frame[col].astype("Int64")
    for col in columns[9:]:                                   # the numbers
        frame[col] = frame[col].astype(np.float64)
    return frame


@click.command("simulate")
@system_argument
@click.option("--fail", "-f", multiple=True, metavar="ID", help="A node or edge that fails (repeatable).")
@click.option("--fail-file", type=click.Path(dir_okay=False, path_type=Path),
              help="A file with one node or edge id per line.")
@format_option("table", "json", "csv")
@output_option
@engine_option
@csv_safe_option
def command(system_dir, fail, fail_file, fmt, output, engine, csv_safe):
    """Fail some nodes and edges of SYSTEM and show what stops working in every lifeline.

    The table shows each layer's service before and after and the failure chain round by
    round; JSON and CSV give every failed node with its round, cause and the supplier it
    lost ("via").  With flow layers the CSV adds the nodes served in part and the failed and
    tripped branches, with amounts in one column per unit ("served (MW)") and the loading.
    """
    system, compiled = load(system_dir)
    ids = failure_ids(compiled, fail, fail_file)
    result = simulate(system, ids, engine=engine, compiled=compiled)
    if fmt == "json":
        data = result.to_dict()
        for name, layer in data["layers"].items():
            layer["unit"] = system.layer_unit(name)     # of demand and demand_served
        text = to_json(data)
    elif fmt == "csv":
        frame = result.failed() if result.served is None else flow_csv_frame(result, system)
        buf = io.StringIO()
        buf.write(csv_text(frame, csv_safe))
        text = buf.getvalue()
    else:
        text = render_table(result, system)
    emit(text, output)
