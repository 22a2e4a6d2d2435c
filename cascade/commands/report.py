"""``cascade report SYSTEM --scenario FILE --output DIR``: one HTML page with its figures."""
from __future__ import annotations

from pathlib import Path

import click

from . import PARALLEL, PARALLEL_RULE, SEED, show_progress, system_argument


@click.command("report")
@system_argument
@click.option("--scenario", "scenario_file", required=True, metavar="SCENARIO.toml",
              type=click.Path(dir_okay=False, path_type=Path), help="The hazard scenario.")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for index.html and its PNGs (created when missing).")
@click.option("--samples", "-n", type=click.IntRange(min=1), default=None,
              help="Monte Carlo samples (default: the scenario's 'samples', else 1000).")
@click.option("--seed", type=SEED, default=None, help="Override the scenario's seed.")
@click.option("--top", type=click.IntRange(min=0), default=15, show_default=True,
              help="Rows of the critical-elements and likely-failures tables, 0 for all.")
@click.option("--elements", type=click.Choice(["nodes", "edges", "all"]), default="all", show_default=True,
              help="Which elements the critical-elements section fails one at a time.")
@click.option("--layer", default=None, metavar="L",
              help="Only the elements of layer L in the critical-elements section (losses are still "
                   "counted in every layer).")
@click.option("--crews", default="1", show_default=True, metavar="N|LAYER=N,...",
              help="Repair crews for the recovery curves: a number per lifeline, or power=2,water=1.")
@click.option("--threads", type=PARALLEL, default=None,
              help=f"Threads, {PARALLEL_RULE} (default: all usable CPUs).")
def command(system_dir, scenario_file, output, samples, seed, top, elements, layer, crews, threads):
    """Write a report a planner can open: the system and its map, the critical elements,
    the loss distribution of a hazard SCENARIO and recovery curves of one bad sample of it.

    Systems with flow layers: the map shows the intact line loading; the recovery curves are
    left out for now, with a note on the page."""
    from ..report import build_report

    try:
        from ..recovery import parse_crews
        crews = parse_crews(crews)
    except ImportError:
        crews = int(crews) if str(crews).isdigit() else 1
    out = build_report(system_dir, scenario_file, output, samples=samples, seed=seed,
                       top=top or 2**31 - 1, crews=crews, threads=threads, elements=elements, layer=layer,
                       progress=show_progress())
    for m in out["missing"]:
        click.echo(f"note: left out {m}", err=True)
    click.echo(f"wrote {out['index']} ({', '.join(out['sections'])}; {len(out['figures'])} figures)", err=True)
