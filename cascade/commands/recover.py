"""``cascade recover SYSTEM --fail ID ...``: repair order, service curve and resilience metrics."""
from __future__ import annotations

import math
from pathlib import Path

import click
import numpy as np

from ..errors import InputError
from ..units import amount
from ..recovery import STRATEGIES, parse_crews, plot_curves, recover_many
from . import (SEED, emit, failure_ids, format_option, load, output_option, pct,
               show_progress, system_argument, table, to_json)

PLOT_FORMATS = ("png", "svg", "pdf")


def hours(x: float) -> str:
    return "never" if not math.isfinite(x) else f"{x:,.1f}"


def service_at(result, times: np.ndarray, column: str = "service") -> np.ndarray:
    """Values of a step curve at ``times`` (each row holds until the next)."""
    t = result.curve["time"].to_numpy()
    pos = np.searchsorted(t, times, side="right") - 1
    return result.curve[column].to_numpy()[np.maximum(pos, 0)]


def milp_line(info: dict) -> str:
    """The MILP's proof: optimal, or its gap and bound."""
    proof = ("the program is proven optimal" if info["optimal"] and info["gap"] == 0 else
             f"the program is proven within {100 * info['gap']:.2f} % of its optimum" if info["optimal"]
             else f"not proven optimal: gap {100 * info['gap']:.2f} %" if math.isfinite(info["gap"])
             else "no bound proven in time: the greedy schedule stands, unproven"
             if math.isfinite(info["objective"]) else "no schedule found in time (greedy's used)")
    source = {"highs": "HiGHS's", "combinatorial": "combinatorial"}.get(info.get("bound_source"))
    bound = f"{source} bound" if source else "bound"
    floor = ""
    if info.get("loss_bound") is not None and info.get("loss_gap") is not None:
        floor = (f"; every schedule loses at least {info['loss_bound']:,.2f} h (combinatorial bound"
                 f" of the simulation), the replay is within {100 * info['loss_gap']:.2f} % of it")
    return (f"milp: {info['status']} after {info['solve_time']:.1f} s, {proof}; program objective "
            f"{info['objective']:,.2f} h, {bound} {info['bound']:,.2f} h (periods of {info['period']:g} h, "
            f"horizon {info['horizon']} periods, {info['binaries']:,} binaries){floor}; the metrics "
            "above are the replay's" + ("; with flow layers greedy's schedule stands (the program's "
                                  "replayed no better)" if info.get("schedule") == "greedy" else ""))


def flow_amounts_line(system, compiled, result) -> str | None:
    """With flow layers: each flow layer's served amount in its unit, before the event and
    right after it (the curve's fractions times the layer's demand); None for v1 systems."""
    from ..compiled import FLOW_CODES

    if compiled is None or not compiled.has_flow_layers:
        return None
    demand = np.bincount(compiled.node_layer, weights=compiled.demand, minlength=len(compiled.layer_names))
    parts = []
    for li, name in enumerate(compiled.layer_names):
        if compiled.layer_rule[li] not in FLOW_CODES or not demand[li] > 0:
            continue
        unit = system.units.get(name)
        after = float(result.curve[name].iloc[0]) * demand[li]
        parts.append(f"{name} {amount(after, unit, 1)} of {amount(demand[li], unit, 1)}")
    if not parts:
        return None
    return ("Served right after the event, of the demand (flow layers, partial service counted): "
            + "; ".join(parts) + ".")


def render_table(system, results, n_nodes: int, n_edges: int, compiled=None) -> str:
    first = results[0]
    crews = ", ".join(f"{k} {v}" for k, v in first.crews.items() if v)
    q0 = first.metrics["baseline_service"]
    weights = {name: system.layer_weight(name) for name in system.layers}
    weight_text = ("equal weights" if len(set(weights.values())) <= 1 else
                   "weights " + ", ".join(f"{k} {v:g}" for k, v in weights.items()))
    out = [f"System {system.name}: {n_nodes} node(s) and {n_edges} edge(s) to repair; crews per layer: "
           f"{crews}.",
           f"Service of all layers (the layers' served fractions of their own demand, averaged with "
           f"{weight_text}; demands in different units are never added): {pct(q0).strip()} before "
           f"the event, {pct(float(first.curve['service'].iloc[0])).strip()} right after it."]
    amounts = flow_amounts_line(system, compiled, first)
    if amounts:
        out.append(amounts)
    out.append("")
    rows = [[r.strategy, f"{r.metrics['resilience_loss']:,.2f}", hours(r.metrics["time_to_90"]),
             hours(r.metrics["restoration_time"]), pct(r.metrics["peak_loss"]),
             hours(r.metrics["repairs_done"]), f"{r.metrics['repair_cost']:,.0f}"]
            for r in results]
    out.append(table(rows, ["strategy", "resilience loss (h)", "90 % at (h)", "100 % at (h)",
                            "peak loss", "repairs done (h)",
                            f"repair cost ({system.currency or 'no currency'})"], "lrrrrrr"))
    shown = 25 if len(results) == 1 else 10
    for r in results:
        if r.solver is not None:
            out.append(milp_line(r.solver))
    if any(r.solver is not None for r in results):
        out.append("")
    for r in results:
        sched = r.schedule
        out.append(f"Repair order ({r.strategy}):")
        if "travel" in sched.columns:        # crews on roads: the leg before each repair
            rows = [[i + 1, s["id"], s["layer"], s["crew"], s["from"], hours(s["depart"]),
                     hours(s["travel"]), hours(s["start"]), hours(s["finish"])]
                    for i, s in enumerate(sched.head(shown).to_dict("records"))]
            text = table(rows, ["#", "id", "layer", "crew", "from", "depart (h)", "travel (h)",
                                "start (h)", "finish (h)"], "rllllrrrr")
        else:
            rows = [[i + 1, s.id, s.layer, s.crew, f"{s.start:,.1f}", f"{s.finish:,.1f}"]
                    for i, s in enumerate(sched.head(shown).itertuples(index=False))]
            text = table(rows, ["#", "id", "layer", "crew", "start (h)", "finish (h)"], "rlllrr")
        out.append("\n".join("  " + line for line in text.splitlines()))
        if len(sched) > shown:
            out.append(f"  … and {len(sched) - shown} more (--format json lists all)")
        out.append("")
    # From the event until service is back for good under every strategy.
    restored = [r.metrics["restoration_time"] for r in results
                if math.isfinite(r.metrics["restoration_time"])]
    end = max(restored) if restored and max(restored) > 0 else \
        max(r.curve["time"].iloc[-1] for r in results)
    times = np.unique(np.round(np.linspace(0.0, end, 11), 1))
    if len(results) == 1:
        r = results[0]
        layers = [c for c in r.curve.columns if c not in ("time", "service")]
        cols = [service_at(r, times)] + [service_at(r, times, name) for name in layers]
        heads = ["all"] + layers
        out.append(f"Service over time ({r.strategy}; 'all' is the weighted mean of the layers):")
    else:
        cols = [service_at(r, times) for r in results]
        heads = [r.strategy for r in results]
        out.append("Service of all layers over time (weighted mean of the layers):")
    rows = [[f"{t:,.1f}"] + [pct(col[i]) for col in cols] for i, t in enumerate(times)]
    text = table(rows, ["hour"] + heads, "r" * (len(heads) + 1))
    out.append("\n".join("  " + line for line in text.splitlines()))
    return "\n".join(out) + "\n"


@click.command("recover")
@system_argument
@click.option("--fail", "-f", multiple=True, metavar="ID",
              help="A node or edge failed by the hazard, to be repaired (repeatable).")
@click.option("--fail-file", type=click.Path(dir_okay=False, path_type=Path),
              help="A file with one failed node or edge id per line.")
@click.option("--crews", default="1", show_default=True, metavar="N|LAYER=N,...",
              help="Repair crews: N in every layer, or per layer (power=3,water=2; "
                   "layers not named get 1).")
@click.option("--strategy", "-s", "strategies", multiple=True, metavar="S",
              help=f"Repair order: {', '.join(STRATEGIES)} (repeat to compare; default greedy).")
@format_option("table", "json")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw the service curves of every strategy into this PNG (or .svg, .pdf).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the random strategy.")
@click.option("--depots", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV of crew bases (column node: a transport node id; optional count): crews "
                   "drive on the roads.")
@click.option("--speed", type=float, default=None, metavar="KM/H",
              help="Crew speed on roads without travel_time (km/h, default 30).")
@click.option("--period", type=float, default=None, metavar="H",
              help="milp: hours per period (default: the median repair time).")
@click.option("--time-limit", "time_limit", type=float, default=60.0, show_default=True, metavar="S",
              help="milp: seconds for HiGHS; the best schedule found and its gap are reported.")
@click.option("--gap", type=float, default=0.0, show_default=True,
              help="milp: stop at this proven relative optimality gap (0.01 = 1 %).")
@click.option("--cost-weight", "cost_weight", type=float, default=0.0, show_default=True,
              help="milp: hours of loss per hour of repair-cost-weighted mean completion time.")
@output_option
def command(system_dir, fail, fail_file, crews, strategies, fmt, plot, seed, depots, speed, period,
            time_limit, gap, cost_weight, output):
    """Repair the elements failed in SYSTEM and follow service back over time.

    Backups (the dependencies' delay) keep dependents working for their hours; crews repair
    one element at a time.  Shows each strategy's repair order, the service curve Q(t), the
    resilience loss R = ∫(Q0 − Q) dt in hours, the times to 90 % and 100 % service and the
    peak loss.
    """
    strategies = list(dict.fromkeys(strategies or ("greedy",)))
    for s in strategies:
        if s not in STRATEGIES:
            raise InputError(f"unknown strategy '{s}' (use {', '.join(STRATEGIES)})")
    crew_spec = parse_crews(crews)
    if plot is not None:
        suffix = plot.suffix.lower().lstrip(".")
        if suffix not in PLOT_FORMATS:
            raise InputError(f"--plot: use a .png, .svg or .pdf file name, not '{plot.name}'")
        if not plot.parent.exists():
            raise InputError("directory does not exist", str(plot.parent))
    if output is not None and not output.parent.exists():
        raise InputError("directory does not exist", str(output.parent))
    system, compiled = load(system_dir)
    ids = failure_ids(compiled, fail, fail_file)
    if not ids:
        raise InputError("nothing to repair: give --fail ID or --fail-file FILE")
    milp = {}
    if "milp" in strategies:
        milp = {"period": period, "time_limit": time_limit, "gap": gap, "cost_weight": cost_weight}
    results = recover_many(system, ids, strategies, crews=crew_spec, seed=seed, compiled=compiled,
                           depots=depots, speed=speed, progress=show_progress(), **milp)
    if fmt == "json":
        units = {"time": "hours", "resilience_loss": "hours", "repair_cost": system.currency,
                 "service": "fraction (weighted mean of the layers' served fractions)"}
        data = [{**r.to_dict(), "repair_cost": float(r.metrics["repair_cost"]),
                 "repairs_done": float(r.metrics["repairs_done"]), "units": units}
                for r in results]
        text = to_json(data[0] if len(data) == 1 else data)
    else:
        nodes, edges = compiled.split_ids(ids)
        text = render_table(system, results, len(nodes), len(edges), compiled)
    if plot is not None:
        plot_curves(results, plot, title=f"{system.name}: recovery from {len(ids)} failed element(s)")
    emit(text, output)
    if plot is not None:
        click.echo(f"wrote {plot}", err=True)
