"""``cascade scenario SYSTEM SCENARIO.toml``: a Monte Carlo ensemble of a hazard and its cascades."""
from __future__ import annotations

import io
from pathlib import Path

import click

from ..errors import InputError
from . import (PARALLEL, PARALLEL_RULE, SEED, csv_safe_option, csv_text, emit, format_option, load,
               output_option, pct, show_progress, system_argument, table, to_json)


def render_table(result, top: int, system=None) -> str:
    data = result.to_dict()
    scen = data["scenario"]
    nd = data["direct_failures_mean"]
    out = [f"Scenario {scen['name']} ({scen['hazard']['type']}) on {data['system']}: "
           f"{data['samples']} samples, seed {data['seed']}, {data['executor']}.",
           f"The hazard fails {nd['nodes']:.1f} node(s) and {nd['edges']:.1f} edge(s) directly "
           f"per sample on average; then the cascade runs.", "",
           "Service loss per layer (share of the layer's own demand, or of its nodes where it has "
           "none); 'overall' is the mean of the layers weighted by their weights, never demands "
           "added across layers; 95% interval of the mean by Student t:"]
    summary = result.summary()
    rows = []
    for r in summary.itertuples(index=False):
        if r.layer == "overall":
            label = "overall"
        else:
            unit = system.layer_unit(r.layer) if system is not None else ""
            weight = system.layer_weight(r.layer) if system is not None else 1.0
            label = f"{r.layer} ({unit or 'no unit'}, weight {weight:g})"
        interval = "n/a" if r.mean_low != r.mean_low else \
            f"[{pct(r.mean_low).strip()}, {pct(r.mean_high).strip()}]"
        rows.append([label, pct(r.mean), interval, pct(r.p5), pct(r.p50), pct(r.p95)])
    out.append(table(rows, ["layer", "mean", "95% interval of the mean", "p5", "p50", "p95"],
                     "lrrrrr"))
    nodes = result.node_probability()
    nodes = nodes[nodes["p_fail"] > 0]
    shown = nodes if top == 0 else nodes.head(top)
    if len(shown):
        out.append(f"Most likely failures ({len(shown)} of the {len(nodes)} nodes that fail in some "
                   "sample; cascade = failed without being hit):")
        rows = [[r.id, r.layer, pct(r.p_fail), pct(r.p_direct), pct(r.p_cascade)]
                for r in shown.itertuples(index=False)]
        out.append(table(rows, ["id", "layer", "p(fail)", "p(hit by the hazard)",
                                "p(failed by the cascade)"], "llrrr"))
    else:
        out.append("No node failed in any sample.\n")
    return "\n".join(out)


@click.command("scenario")
@system_argument
@click.argument("scenario_file", metavar="SCENARIO.toml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--samples", "-n", type=click.IntRange(min=1), default=None,
              help="Number of samples (default: the file's 'samples', else 1000).")
@click.option("--seed", type=SEED, default=None, help="Override the file's seed.")
@format_option("table", "json", "csv")
@output_option
@click.option("--threads", type=PARALLEL, default=None, metavar="N",
              help=f"Local threads, {PARALLEL_RULE}  [default: the machine's cores]")
@click.option("--workers", type=PARALLEL, default=None,
              help=f"Start a local Dask cluster of N worker processes, {PARALLEL_RULE} (needs the 'dask' extra).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Send the samples to a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--top", type=click.IntRange(min=0), default=15, show_default=True,
              help="Nodes listed under 'most likely failures' (table and JSON), 0 for all.")
@click.option("--reproject", is_flag=True,
              help="A system in a geographic CRS (degrees): measure distances in the UTM zone of "
                   "its centroid (scenario coordinates such as an epicentre stay in the system's CRS).")
@csv_safe_option
def command(system_dir, scenario_file, samples, seed, fmt, output, threads, workers, scheduler, top,
            reproject, csv_safe):
    """Sample a hazard SCENARIO.toml on SYSTEM many times, cascade each sample, and report
    the distribution of service loss per layer and each node's failure probability (how
    much of it the hazard causes directly and how much the cascade adds).

    Results for a seed are identical on threads, --workers or --scheduler.
    """
    from ..ensemble import run_ensemble
    from ..hazards import load_scenario

    if workers is not None and scheduler is not None:
        raise InputError("give either --workers or --scheduler, not both")
    if threads is not None and (workers is not None or scheduler is not None):
        raise InputError("--threads runs locally; it cannot be combined with --workers or --scheduler")
    scenario = load_scenario(scenario_file, reproject=reproject)
    system, compiled = load(system_dir)
    scenario.check_system(system, system_dir)
    samples = samples or scenario.samples or 1000
    result = run_ensemble(system, scenario, samples, seed=seed, threads=threads, scheduler=scheduler,
                          workers=workers, compiled=compiled, progress=show_progress())
    if fmt == "json":
        data = result.to_dict(top=None if top == 0 else top)
        data["layers"] = {name: {"unit": system.layer_unit(name), "weight": system.layer_weight(name)}
                          for name in compiled.layer_names}
        data["overall"] = "mean of the layers' losses weighted by their weights"
        text = to_json(data)
    elif fmt == "csv":
        buf = io.StringIO()
        buf.write(csv_text(result.node_probability(), csv_safe))
        text = buf.getvalue()
    else:
        text = render_table(result, top, system)
    emit(text, output)
