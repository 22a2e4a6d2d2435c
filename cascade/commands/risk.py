"""``cascade risk SYSTEM SCENARIO.toml...``: expected annual loss, loss exceedance, contributions."""
from __future__ import annotations

import io
import math
from pathlib import Path

import click

from ..errors import InputError
from ..units import per_year
from . import (PARALLEL, PARALLEL_RULE, SEED, emit, format_option, load, output_option, show_progress,
               system_argument, table, to_json)


def _pairs(values, option, cast):
    out = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise InputError(f"{option} takes LAYER=VALUE, not '{text}'")
        try:
            out[name] = cast(value)
        except ValueError:
            raise InputError(f"{option} {name}: not a number: '{value}'") from None
        if cast is float and not math.isfinite(out[name]):
            raise InputError(f"{option} {name}: must be finite, not '{value}'")
    return out


def _rate(x: float) -> str:
    return f"{x:.4g} /yr"


def _years(x: float) -> str:
    if not math.isfinite(x):
        return "inf yr"
    return f"{x:,.0f} yr" if x >= 100 else f"{x:.3g} yr"


def render_table(result, top: int) -> str:
    out = [f"Annual risk on {result.system}: {len(result.scenarios)} scenario(s), "
           f"{_rate(result.total_rate)} in all, {result.executor}.", ""]
    rows = [[s["name"], s["hazard"], _rate(s["annual_rate"]), _years(s["return_period"]),
             s["samples"], f"{100 * s['mean_score']:.3f}%"] for s in result.scenarios]
    out.append(table(rows, ["scenario", "hazard", "rate", "1 / rate", "samples", "mean score"],
                     "llrrrr"))
    out.append("Expected annual service loss (EAL) per layer: lost fraction of the layer's intact "
               "service per year, and in the layer's unit per year:")
    rows = [[name, f"{100 * f:.4f}%/yr", f"{f * total:,.4g} {per_year(unit)}", f"{total:,.6g} {unit}", f"{w:.3f}"]
            for name, unit, total, w, f in zip(result.layers, result.units, result.totals,
                                               result.weights, result.eal)]
    out.append(table(rows, ["layer", "EAL (fraction)", "EAL (amount)", "intact", "weight"], "lrrrr"))
    ratio = [(unit, f * total) for unit, total, f in zip(result.units, result.totals, result.eal)
             if unit and "/" in unit]
    if ratio:   # a rate unit per year: say once how to read it
        unit, value = ratio[0]
        out.append(f"({unit})/yr: demand lost in {unit}, summed over a year's events on average "
                   f"(events per year x the loss of each); {value:,.4g} ({unit})/yr is, for example, "
                   f"{value:,.4g} {unit} lost for one event a year.")
        out.append("")
    out.append(f"Score (weighted mean of the layers' lost fractions): EAL {100 * result.eal_score:.4f} %/yr.")
    out.append("")
    if len(result.curve):
        out.append("Loss exceedance (score >= loss; rate in events per year):")
        rows = [[f"{100 * r.loss:.3f}%", _rate(r.rate), _years(r.return_period), f"{100 * r.probability:.3f}%"]
                for r in result.curve_rows().itertuples(index=False)]
        out.append(table(rows, ["loss >=", "rate", "return period", "P(in a year)"], "rrrr"))
    else:
        out.append("No sample lost any service: the loss exceedance curve is empty.\n")
    assets = result.assets.head(top)
    if len(assets):
        how = ("split equally among" if result.attribution == "equal" else
               "split by the loss each avoids when spared, among")
        out.append(f"Contributions to the expected annual score (top {len(assets)}; each sample's loss "
                   f"{how} the assets the hazard failed directly):")
        rows = [[r.id, r.element, r.layer, f"{100 * r.contribution:.5f}%/yr", f"{100 * r.share:.1f}%",
                 "" if r.element == "edge" else _rate(r.outage_rate)]
                for r in assets.itertuples(index=False)]
        out.append(table(rows, ["id", "element", "layer", "contribution", "share", "out of service"],
                         "lllrrr"))
    return "\n".join(out)


@click.command("risk")
@system_argument
@click.argument("scenario_files", metavar="SCENARIO.toml...", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--samples", "-n", type=click.IntRange(min=1), default=None,
              help="Samples per scenario (default: each file's 'samples', else 1000).")
@click.option("--seed", type=SEED, default=None, help="Override every file's seed.")
@click.option("--weight", "weights", multiple=True, metavar="LAYER=W",
              help="Weight of a layer in the score (default: its weight in system.toml, else 1; repeat per layer).")
@click.option("--unit", "units", multiple=True, metavar="LAYER=TEXT",
              help="Unit label of a layer's demand (default: the layer's unit in system.toml, else 'demand units'; 'nodes' without demand).")
@format_option("table", "json", "csv")
@output_option
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Draw the loss-exceedance curve to this PNG, SVG or PDF file.")
@click.option("--threads", type=PARALLEL, default=None,
              help=f"Local threads, {PARALLEL_RULE} (default: all usable CPUs).")
@click.option("--workers", type=PARALLEL, default=None,
              help=f"Start a local Dask cluster of N worker processes, {PARALLEL_RULE} (needs the 'dask' extra).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Send the samples to a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--attribution", type=click.Choice(["equal", "marginal"]), default="equal",
              show_default=True,
              help="Split each sample's loss among its direct failures equally, or by what "
                   "sparing each one alone avoids (one more sample per direct failure).")
@click.option("--top", type=click.IntRange(min=0), default=15, show_default=True,
              help="Assets listed by contribution (table and JSON; 0 = all in JSON).")
def command(system_dir, scenario_files, samples, seed, weights, units, fmt, output, plot, threads,
            workers, scheduler, attribution, top):
    """Annual risk of SYSTEM from SCENARIO files that each carry their annual rate
    ([scenario] annual_rate = events per year, or return_period = years): the expected
    annual service loss per layer, the loss-exceedance curve, and each asset's contribution
    to the expected loss.  --format csv writes the asset contributions.
    """
    from ..hazards import load_scenario
    from ..risk import annual_risk, plot_curve

    if workers is not None and scheduler is not None:
        raise InputError("give either --workers or --scheduler, not both")
    if threads is not None and (workers is not None or scheduler is not None):
        raise InputError("--threads runs locally; it cannot be combined with --workers or --scheduler")
    if plot is not None:
        if plot.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise InputError("the plot is written as .png, .svg or .pdf", str(plot))
        if not plot.parent.exists():
            raise InputError("directory does not exist", str(plot.parent))
        try:
            import matplotlib  # noqa: F401  (checked before the ensembles run)
        except ImportError:
            raise InputError("--plot needs the optional extra 'plot': "
                             "pip install 'cascade-lifelines[plot]'") from None
    if output is not None and not output.parent.exists():
        raise InputError("directory does not exist", str(output.parent))
    seen = set()
    for f in scenario_files:
        key = f.resolve()
        if key in seen:
            raise InputError("scenario file given twice (its rate would count twice)", str(f))
        seen.add(key)
    weights = _pairs(weights, "--weight", float)
    units = _pairs(units, "--unit", str)
    scenarios = [load_scenario(f) for f in scenario_files]
    system, compiled = load(system_dir)
    result = annual_risk(system, scenarios, samples=samples, seed=seed, weights=weights, units=units,
                         threads=threads, scheduler=scheduler, workers=workers, progress=show_progress(),
                         attribution=attribution)
    if fmt == "json":
        text = to_json(result.to_dict(top=None if top == 0 else top))
    elif fmt == "csv":
        buf = io.StringIO()
        result.assets.to_csv(buf, index=False, lineterminator="\n")
        text = buf.getvalue()
    else:
        text = render_table(result, top)
    if plot is not None:
        plot_curve(result, plot)
        click.echo(f"wrote {plot}", err=True)
    emit(text, output)
