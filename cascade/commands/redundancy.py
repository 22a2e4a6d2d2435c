"""``cascade redundancy SYSTEM --candidates FILE --scenario FILE``: rank redundancy measures.

Ranks backups, second feeds, new links and hardening (on flow layers also raised capacities and
supplies and new lines) by the expected loss they avoid under a
hazard scenario (common random numbers), per unit cost, and with ``--budget`` plans greedily
with re-evaluation after each pick (see :mod:`cascade.redundancy`).
"""
from __future__ import annotations

import io
import math
import re
from pathlib import Path

import click

from ..errors import InputError, did_you_mean
from ..redundancy import (EXHAUSTIVE_LIMIT, RANKING_COLUMNS, FixedSampler, analyse,
                          ScenarioSampler, read_candidates, suggest, write_candidates)
from . import (PARALLEL, PARALLEL_RULE, SEED, csv_safe_option, csv_text, default_threads, emit, format_option,
               load, output_option, read_id_file, read_id_lines, show_progress,
               system_argument, table, to_json)

STRATEGIES = ("greedy", "critical", "random", "optimal")
DEFAULT_SAMPLES = 100
# Each resilience sample is a whole repair schedule: a smaller default keeps a run to minutes.
RESILIENCE_SAMPLES = 100


def parse_crews(text: str):
    """``"2"`` -> 2; ``"power=2,water=1"`` -> {"power": 2, "water": 1}."""
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        value = int(text)
        if value < 1:
            raise InputError("--crews must be at least 1")
        return value
    out = {}
    for part in text.split(","):
        m = re.fullmatch(r"\s*([^=\s]+)\s*=\s*(\d+)\s*", part)
        if not m or int(m.group(2)) < 1:
            raise InputError(f"--crews: expected a number or LAYER=N,... (N >= 1), not '{text}'")
        out[m.group(1)] = int(m.group(2))
    return out


def read_failure_sets(path: Path, compiled) -> list[list[str]]:
    """One sample per line: node and edge ids separated by spaces or commas."""
    sets = []
    for line, number in read_id_lines(path):
        ids = [x for x in re.split(r"[,\s]+", line) if x]
        for name in ids:
            if name not in compiled._node_map and name not in compiled._edge_map:
                raise InputError(f"unknown node or edge id '{name}'" + did_you_mean(
                    name, [*compiled._node_map, *compiled._edge_map]), str(path), number)
        sets.append(ids)
    if not sets:
        raise InputError("no failure sets (one sample per line)", str(path))
    return sets


def _benefit(x: float, metric: str) -> str:
    if metric == "served":
        return f"{100 * x:.3f}"
    return f"{x:.4g}"


def _per_cost(x: float, metric: str) -> str:
    if math.isinf(x):
        return "free"
    return f"{(100 if metric == 'served' else 1) * x:.4g}"


def render_table(result, source: str, currency: str | None = None) -> str:
    metric = result.metric
    money = currency or "no currency"
    unit_of_cost = currency or "cost unit"
    unit = ("percentage points of service (static cascade; each layer's served fraction of its "
            "own demand, averaged with the layers' weights)" if metric == "served"
            else "hours of lost service, ∫(Q0-Q)dt")
    out = [f"System {result.system}: {len(result.candidates)} candidate measure(s), "
           f"{result.samples} hazard sample(s) from {source}, metric {metric}.",
           (f"Base system: expected {_benefit(result.base_loss, metric)} % of service lost "
            "after the cascade (weighted mean of the layers)." if metric == "served" else
            f"Base system: expected resilience loss {_benefit(result.base_loss, metric)} h "
            f"(strategy {result.settings.get('strategy')}, crews {result.settings.get('crews')})."),
           *([f"Flow layers: served amounts count (partial service, overload trips); the intact "
              f"system already lacks {_benefit(result.settings['intact_loss'], metric)} % of its "
              "service, which every sample's loss includes."]
             if result.settings.get("intact_loss", 0) > 0 else []),
           f"Benefit = expected loss avoided, in {unit}; [low, high] = Student t 95% interval of "
           f"the paired differences; per cost = benefit per 1 {unit_of_cost}"
           + ("" if currency else " (set [system] currency in system.toml to name it)") + ".", ""]
    rows = []
    for r in result.ranking.itertuples(index=False):
        rows.append([r.rank, r.id, r.type, f"{r.cost:g}", _benefit(r.benefit, metric),
                     f"[{_benefit(r.benefit_low, metric)}, {_benefit(r.benefit_high, metric)}]",
                     _per_cost(r.benefit_per_cost, metric)])
    out.append(table(rows, ["rank", "id", "type", f"cost ({money})", "benefit", "95% interval",
                            "per cost"], "rllrrrr"))
    out.append("Why:")
    for r in result.ranking.itertuples(index=False):
        out.append(f"  {r.rank}. {r.id} ({r.summary}): {r.why}")
    p = result.plan
    if p is not None:
        out.append("")
        best = p.recommended()
        what = {"greedy": "the greedy plan below", "single": "one measure alone, better than the "
                "greedy plan below", "exhaustive": "the exhaustive search, better than the greedy "
                "plan below"}[best["source"]]
        if best["ids"]:
            out.append(f"Best plan under budget {p.budget:g} ({money}): {', '.join(best['ids'])} "
                       f"(cost {best['cost']:g}, benefit {_benefit(best['benefit'], metric)}; "
                       f"from {what}).")
        else:
            out.append(f"Best plan under budget {p.budget:g} ({money}): nothing to fund.")
        out.append(f"Greedy plan (by benefit per cost, re-evaluated after each pick):")
        if p.steps:
            rows = [[k + 1, s.id, f"{s.cost:g}", _benefit(s.benefit.mean, metric),
                     f"[{_benefit(s.benefit.low, metric)}, {_benefit(s.benefit.high, metric)}]",
                     f"{s.cumulative_cost:g}"] for k, s in enumerate(p.steps)]
            out.append(table(rows, ["step", "id", f"cost ({money})", "marginal benefit",
                                    "95% interval", f"total cost ({money})"], "rlrrrr").rstrip("\n"))
            out.append(f"  plan: cost {p.cost:g}, benefit {_benefit(p.benefit.mean, metric)} "
                       f"[{_benefit(p.benefit.low, metric)}, {_benefit(p.benefit.high, metric)}]")
        else:
            out.append("  nothing to fund: no affordable measure has a positive benefit")
        alone = dict(zip(result.ranking["id"], result.ranking["benefit"]))
        cost = {m.id: m.cost for m in result.candidates}
        left = p.budget - p.cost
        for mid, value in p.left_out.items():
            if value > 0 and cost[mid] > left + 1e-9:
                reason = (f"over the budget left ({cost[mid]:g} > {left:g}); marginal benefit "
                          f"{_benefit(value, metric)}")
            elif alone[mid] > 0:
                reason = (f"covered by the plan: marginal benefit {_benefit(value, metric)}, alone "
                          f"{_benefit(alone[mid], metric)}")
            else:
                reason = f"no benefit (marginal {_benefit(value, metric)})"
            out.append(f"  not picked: {mid}: {reason}")
        if p.single_id is not None:
            out.append(f"  note: {p.single_id} alone is worth more than the greedy plan "
                       f"({_benefit(p.single_benefit, metric)}); greedy by ratio can miss one big "
                       "measure")
        if p.best_ids is not None:
            gap = p.gap
            verdict = "the greedy plan is optimal" if gap <= 1e-12 else \
                f"gap {_benefit(gap, metric)}"
            out.append(f"  exhaustive search ({p.searched} subsets within budget): best "
                       f"{', '.join(p.best_ids) or 'nothing'} (cost {p.best_cost:g}, benefit "
                       f"{_benefit(p.best_benefit, metric)}); {verdict}")
        elif p.note:
            out.append(f"  {p.note}")
    return "\n".join(out) + "\n"


@click.command("redundancy")
@system_argument
@click.option("--candidates", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV of candidate measures: id,type,cost,node,group,hours,supplier,source,target,"
                   "directed,element,factor,capacity,supply,reactance,description (see the README).")
@click.option("--scenario", type=click.Path(dir_okay=False, path_type=Path),
              help="Hazard scenario (TOML) whose samples every measure is evaluated on.")
@click.option("--failure-sets", type=click.Path(dir_okay=False, path_type=Path),
              help="Instead of --scenario: one sample per line, the node and edge ids that fail.")
@click.option("--samples", "-n", type=click.IntRange(min=1),
              help="Hazard samples (default: the scenario's, else 100, at most 100 with --metric "
                   "resilience; with --failure-sets the number of lines).")
@click.option("--budget", type=click.FloatRange(min=0), help="Plan measures under this total cost.")
@click.option("--metric", type=click.Choice(["served", "resilience"]), default="served",
              show_default=True,
              help="served: expected static service loss; resilience: expected ∫(1-Q)dt of the recovery.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="greedy", show_default=True,
              help="Recovery strategy (metric resilience).")
@click.option("--crews", default="1", show_default=True, metavar="N|LAYER=N,...",
              help="Repair crews (metric resilience): a number, or LAYER=N,... per layer.")
@click.option("--suggest", "n_suggest", type=click.IntRange(min=0), default=0,
              help="Add backup and feed candidates for the N most critical nodes (default cost model).")
@click.option("--seed", type=SEED, default=None, help="Seed of the hazard samples (default: the scenario's).")
@click.option("--threads", type=PARALLEL, default=None, metavar="N",
              help=f"Threads over samples for the static cascade, {PARALLEL_RULE}  [default: the machine's cores]")
@click.option("--workers", type=PARALLEL, default=None,
              help=f"Run the cascades (metric served) on a local Dask cluster of N worker processes, {PARALLEL_RULE}.")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Run the cascades (metric served) on a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--exhaustive-limit", type=click.IntRange(min=0),
              help=f"With --budget, also search every plan within budget when there are at most this "
                   f"many candidates (default {EXHAUSTIVE_LIMIT['served']}, or "
                   f"{EXHAUSTIVE_LIMIT['resilience']} with --metric resilience).")
@format_option("table", "json", "csv")
@output_option
@csv_safe_option
def command(system_dir, candidates, scenario, failure_sets, samples, budget, metric, strategy,
            crews, n_suggest, seed, threads, workers, scheduler, exhaustive_limit, fmt, output,
            csv_safe):
    """Rank redundancy measures of SYSTEM by the loss they avoid per unit cost.

    Every measure sees the same hazard samples (common random numbers).  The table shows the
    ranking with a 95% interval, one line per measure on why it helps, and with --budget the
    greedy plan; CSV gives the columns
    rank,id,type,cost,benefit,benefit_low,benefit_high,benefit_per_cost.
    """
    if (scenario is None) == (failure_sets is None):
        raise InputError("give exactly one of --scenario FILE and --failure-sets FILE")
    if candidates is None and not n_suggest:
        raise InputError("give --candidates FILE, --suggest N, or both")
    crews_value = parse_crews(crews)
    if workers is not None and scheduler is not None:
        raise InputError("give either --workers or --scheduler, not both")
    if threads is not None and (workers is not None or scheduler is not None):
        raise InputError("--threads runs locally; it cannot be combined with --workers or --scheduler")
    if metric != "served" and (workers is not None or scheduler is not None):
        raise InputError("--workers/--scheduler run the served metric only (the recoveries of "
                         "--metric resilience run locally)")
    threads = threads or default_threads()
    system, compiled = load(system_dir)
    measures = read_candidates(candidates, system) if candidates is not None else []
    if n_suggest:
        taken = {m.id for m in measures}
        measures += [m for m in suggest(system, n_suggest, compiled=compiled) if m.id not in taken]
    if not measures:
        raise InputError("no candidate measures to evaluate"
                         + (f" ({candidates} has none" if candidates is not None else " (")
                         + ("; --suggest found no node with dependencies)" if n_suggest else ")"))
    if failure_sets is not None:
        sets = read_failure_sets(failure_sets, compiled)
        sampler = FixedSampler(sets)
        source = str(failure_sets)
        if samples is None:
            samples = len(sets)
    else:
        try:
            from ..hazards import load_scenario
        except ImportError:
            raise InputError("--scenario needs cascade.hazards, which is not available; "
                             "use --failure-sets") from None
        loaded = load_scenario(scenario)
        loaded.check_system(system, system_dir)
        sampler = ScenarioSampler(loaded, system, compiled, seed=seed)
        source = str(scenario)
        if samples is None:
            samples = loaded.samples or DEFAULT_SAMPLES
            if metric == "resilience":
                samples = min(samples, RESILIENCE_SAMPLES)
    from ..cluster import open_cluster

    cluster = open_cluster(scheduler, workers)   # checked above: at most one, served metric
    try:
        result = analyse(system, measures, sampler, samples, metric=metric, budget=budget,
                         strategy=strategy, crews=crews_value, seed=seed or 0, threads=threads,
                         exhaustive_limit=EXHAUSTIVE_LIMIT[metric] if exhaustive_limit is None
                         else exhaustive_limit, compiled=compiled, progress=show_progress(),
                         cluster=cluster)
    finally:
        if cluster is not None:
            cluster.close()
    if fmt == "json":
        data = result.to_dict()
        data["source"] = source
        data["units"] = {"benefit": "fraction of service (each layer's served fraction of its own "
                                    "demand, averaged with the layers' weights)" if metric == "served"
                         else "hours of lost service", "cost": system.currency}
        if n_suggest:
            data["suggested_candidates_csv"] = write_candidates(measures)
        text = to_json(data)
    elif fmt == "csv":
        buf = io.StringIO()
        frame = result.ranking[RANKING_COLUMNS].copy()
        buf.write(csv_text(frame, csv_safe, float_format="%.10g"))
        text = buf.getvalue()
    else:
        text = render_table(result, source, system.currency)
    emit(text, output)
