"""``cascade scenario SYSTEM SCENARIO.toml``: a Monte Carlo ensemble of a hazard and its cascades."""
from __future__ import annotations

import io
from pathlib import Path

import click

from ..errors import InputError
from . import (SEED, csv_safe_option, csv_text, emit, format_option, is_terminal, load,
               output_option, pct, system_argument, table, to_json)


def render_table(result, top: int) -> str:
    data = result.to_dict()
    scen = data["scenario"]
    nd = data["direct_failures_mean"]
    out = [f"Scenario {scen['name']} ({scen['hazard']['type']}) on {data['system']}: "
           f"{data['samples']} samples, seed {data['seed']}, {data['executor']}.",
           f"The hazard fails {nd['nodes']:.1f} node(s) and {nd['edges']:.1f} edge(s) directly "
           f"per sample on average; then the cascade runs.", "",
           "Service loss (share of demand, or of nodes where a layer has none):"]
    rows = [[r.layer, pct(r.mean), pct(r.p5), pct(r.p50), pct(r.p95)]
            for r in result.summary().itertuples(index=False)]
    out.append(table(rows, ["layer", "mean", "p5", "p50", "p95"], "lrrrr"))
    nodes = result.node_probability()
    nodes = nodes[nodes["p_fail"] > 0].head(top)
    if len(nodes):
        out.append(f"Most likely failures (top {len(nodes)}; cascade = failed without being hit):")
        rows = [[r.id, r.layer, pct(r.p_fail), pct(r.p_direct), pct(r.p_cascade)]
                for r in nodes.itertuples(index=False)]
        out.append(table(rows, ["id", "layer", "p(fail)", "hazard", "cascade"], "llrrr"))
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
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Local threads (default: all usable CPUs).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Start a local Dask cluster of N worker processes (needs the 'dask' extra).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Send the samples to a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--top", type=click.IntRange(min=0), default=15, show_default=True,
              help="Nodes listed under 'most likely failures' (table and JSON).")
@csv_safe_option
def command(system_dir, scenario_file, samples, seed, fmt, output, threads, workers, scheduler, top, csv_safe):
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
    scenario = load_scenario(scenario_file)
    system, compiled = load(system_dir)
    samples = samples or scenario.samples or 1000
    result = run_ensemble(system, scenario, samples, seed=seed, threads=threads, scheduler=scheduler,
                          workers=workers, compiled=compiled, progress=is_terminal())
    if fmt == "json":
        text = to_json(result.to_dict(top=None if top == 0 else top))
    elif fmt == "csv":
        buf = io.StringIO()
        buf.write(csv_text(result.node_probability(), csv_safe))
        text = buf.getvalue()
    else:
        text = render_table(result, top)
    emit(text, output)
