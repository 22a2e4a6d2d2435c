"""``cascade critical SYSTEM``: N-1 criticality of every node (and edge) across all lifelines,
the greedy worst set of K, and how single-layer rankings (degree, betweenness) compare."""
from __future__ import annotations

import time

import click
import numpy as np
import pandas as pd

from ..criticality import (blind_spots, betweenness_method, compare_rankings, greedy_worst_set,
                           sweep_ranking)
from ..errors import InputError
from ..units import amount, layer_totals
from . import (PARALLEL, PARALLEL_RULE, csv_safe_option, csv_text, default_threads, emit,
               emit_chunks, engine_option, format_option, load, output_option, release_memory,
               show_progress, system_argument, table, to_json)

TABLE_TOP = 20                 # rows of the table when --top is not given


CSV_CHUNK = 1 << 16   # rows per piece of the whole CSV


def csv_chunks(ranking, safe: bool):
    """The whole ranking as CSV text, ``CSV_CHUNK`` rows at a time from its arrays (the
    header with the first piece); the same text as one ``csv_text`` of the whole table."""
    order = ranking.order()
    if not len(order):
        yield csv_text(ranking_records(ranking._frame(order)), safe)
        return
    for lo in range(0, len(order), CSV_CHUNK):
        part = ranking._frame(order[lo:lo + CSV_CHUNK])
        part.insert(0, "rank", range(lo + 1, lo + 1 + len(part)))
        yield csv_text(part, safe, header=lo == 0)


def ranking_records(ranked) -> list[dict]:
    """The CSV/JSON records: ``rank`` then the sweep's columns."""
    out = ranked.copy()
    out.insert(0, "rank", range(1, len(out) + 1))
    return out


SCORE_TEXT = ("score = sum over layers of weight x lost fraction of the layer's demand "
              "(of its nodes where it has no demand); unit-free")


def _nodes_down(row, layer_names) -> str:
    parts = [(int(row[f"lost_{name}"]), name) for name in layer_names]
    parts = sorted((p for p in parts if p[0] > 0), key=lambda p: (-p[0], p[1]))
    return ", ".join(f"{name} {count}" for count, name in parts) or "-"


def _demand_down(row, system, layer_names, totals) -> str:
    """Demand lost per layer in the layer's unit, largest fraction first."""
    parts = []
    for name, total in zip(layer_names, totals):
        lost = float(row[f"demand_lost_{name}"])
        if lost > 0:
            parts.append((-(lost / total if total > 0 else 0.0), name, lost))
    return "; ".join(f"{name} {amount(lost, system.layer_unit(name))}"
                     for _, name, lost in sorted(parts)) or "-"


def _kinds(system, compiled=None, shown=None) -> dict:
    """(id, element) -> kind, from the optional ``kind`` columns (of the ``shown`` rows only,
    when given)."""
    out = {}
    for table_, element in ((system.nodes, "node"), (system.edges, "edge")):
        if "kind" not in table_.columns:
            continue
        kinds = table_["kind"].to_numpy(dtype=object)
        if shown is not None and compiled is not None:
            wanted = pd.Index(pd.unique(np.asarray(
                [str(i) for i, e in zip(shown["id"], shown["element"]) if e == element], object)))
            all_ids = table_["id"].to_numpy(dtype=object)
            hits = np.flatnonzero(wanted.get_indexer(all_ids) >= 0)   # one pass, no dict of all
            pairs = zip(all_ids[hits], kinds[hits])
        else:
            pairs = zip(table_["id"], kinds)
        out.update({(str(i), element): str(k) for i, k in pairs if isinstance(k, str) and k})
    return out


def _timing(info) -> str:
    text = f"sweep {info['seconds']:.2f} s"
    if info.get("worst_seconds") is not None:
        text += f", worst set {info['worst_seconds']:.2f} s"
    if info.get("compare_seconds") is not None:
        text += f", comparison {info['compare_seconds']:.2f} s"
    return text


def render_table(system, compiled, ranked, shown, worst, comparison, spots, info, kinds=None) -> str:
    names = compiled.layer_names
    totals, _ = layer_totals(compiled)
    demand_text = ", ".join(f"{name} {amount(total, system.layer_unit(name))}"
                            for name, total in zip(names, totals))
    weights = {name: system.layer_weight(name) for name in names}
    weight_text = ("every layer weight 1" if all(w == 1.0 for w in weights.values()) else
                   "weights " + ", ".join(f"{n} {w:g}" for n, w in weights.items()))
    runs_on = info.get("executor") or f"{info['threads']} thread(s)"
    out = [f"System {compiled.name}: N-1 over {info['count']:,} {info['what']} "
           f"({info['engine']} engine, {runs_on}; {_timing(info)}).",
           f"Demand per layer: {demand_text}.",
           f"Ranked by score, then nodes lost: {SCORE_TEXT} ({weight_text}). "
           "Losses count every lifeline, against the intact system."]
    if compiled.has_flow_layers:
        out.append("Flow layers: demand lost = served amount of the intact system - served amount after "
                   "the cascade (partial service and overload trips counted; one full flow cascade per "
                   "element).")
    out.append("")
    if len(shown):
        spot_ids = set(zip(spots["id"], spots["element"])) if spots is not None else set()
        rows = []
        for rank, (_, r) in enumerate(shown.iterrows(), 1):
            name = r["id"] if r["element"] == "node" else f"{r['id']} (edge)"
            rows.append([rank, name, r["layer"], (kinds or {}).get((r["id"], r["element"]), ""),
                         f"{r['score']:.3f}", r["nodes_lost"], r["cross_layer_lost"],
                         _nodes_down(r, names), _demand_down(r, system, names, totals)]
                        + (["!" if (r["id"], r["element"]) in spot_ids else ""]
                           if spots is not None else []))
        headers = ["rank", "id", "layer", "kind", "score", "nodes lost",
                   "nodes lost in other lifelines", "nodes lost per layer", "demand lost per layer"]
        if spots is not None:
            headers.append("blind spot")
        out.append(table(rows, headers, "rlllrrrlll"[:len(headers)]))
        if len(shown) < len(ranked):
            out.append(f"(top {len(shown)} of {len(ranked)}; --top 0 lists all)")
    else:
        out.append("No element to rank.")
    if worst is not None:
        out += ["", f"Worst set of {info['k']} (greedy: each step adds the element with the highest "
                    "score together with the ones before):"]
        rows = [[r["step"], r["id"] if r["element"] == "node" else f"{r['id']} (edge)", r["layer"],
                 f"{r['score']:.3f}", f"+{r['score_added']:.3f}", r["nodes_lost"],
                 _demand_down(r, system, names, totals)]
                for _, r in worst.iterrows()]
        out.append(table(rows, ["step", "id", "layer", "score", "added", "nodes lost",
                                "demand lost per layer"], "rllrrrl").rstrip("\n"))
        if len(worst) < info["k"]:
            out.append(f"(stopped after {len(worst)} step(s): no remaining element loses anything more)")
    if comparison is not None and len(comparison):
        out += ["", "Single-layer structural rankings against this one (igraph):"]
        for r in comparison.itertuples(index=False):
            rho = "n/a" if r.spearman != r.spearman else f"{r.spearman:+.2f}"
            out.append(f"  {r.measure:<12} ({r.element}s): top-{r.top_k} overlap {100 * r.overlap:3.0f}%, "
                       f"Spearman {rho}")
        how = info.get("betweenness")
        if how is not None and not how["exact"]:
            out.append(f"  betweenness estimated from {how['sources']:,} sampled sources (seed "
                       f"{how['seed']}, drawn per layer) of {how['nodes']:,} nodes: their "
                       f"shortest-path dependencies scaled up (exact up to {how['exact_max']:,} "
                       "nodes)")
    if spots is not None:
        out += ["", f"Interdependency blind spots (!): in this top {info['spot_k']}, but not in the top "
                    f"{info['spot_k']} when each lifeline is analysed alone (dependencies removed):"]
        if len(spots):
            for r in spots.itertuples(index=False):
                out.append(f"  {r.id} ({r.layer}): rank {r.rank} coupled, rank {r.alone_rank} alone; "
                           f"score {r.score:.3f} coupled vs {r.alone_score:.3f} alone, "
                           f"{r.cross_layer_lost} node(s) lost in other lifelines")
        else:
            out.append("  none")
    return "\n".join(out) + "\n"


def json_data(system, compiled, records, worst) -> dict:
    """The JSON object: units and weights of the layers, the score's definition, the records."""
    data = {"system": compiled.name, "score": SCORE_TEXT,
            "units": {name: system.layer_unit(name) for name in compiled.layer_names},
            "weights": {name: system.layer_weight(name) for name in compiled.layer_names},
            "ranking": records}
    if worst is not None:
        data["worst_set"] = worst.to_dict(orient="records")
    return data


@click.command("critical")
@system_argument
@click.option("--top", type=click.IntRange(min=0), default=None, metavar="K",
              help=f"Rows to show, 0 for all  [default: {TABLE_TOP} for the table, all for csv/json]")
@click.option("--elements", type=click.Choice(["nodes", "edges", "all"]), default="nodes",
              show_default=True, help="Which elements fail one at a time.")
@click.option("--layer", metavar="L", default=None, help="Only the elements of layer L "
              "(losses are still counted in every layer).")
@click.option("-k", "--k", "k", type=click.IntRange(min=1), default=None, metavar="K",
              help="Also find the greedy worst set of K elements (table and json); it stops "
                   "early when nothing more can be lost.")
@click.option("--compare/--no-compare", default=True, show_default=True,
              help="Table: degree/betweenness agreement and interdependency blind spots "
                   "(one more sweep of the decoupled system).")
@format_option("table", "json", "csv")
@output_option
@click.option("--threads", type=PARALLEL, default=None, metavar="N",
              help=f"Worker threads, {PARALLEL_RULE}  [default: the machine's cores]")
@click.option("--workers", type=PARALLEL, default=None,
              help=f"Sweep on a local Dask cluster of N worker processes, {PARALLEL_RULE} (needs the 'dask' extra).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Sweep on a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@engine_option
@csv_safe_option
def command(system_dir, top, elements, layer, k, compare, fmt, output, threads, workers, scheduler,
            engine, csv_safe):
    """Rank the nodes (or edges) of SYSTEM by what their failure alone takes down across
    every lifeline (N-1).

    Each element fails alone and the full coupled cascade runs; nodes that did not work
    before are never counted as lost.  Elements are ranked by a unit-free score: the sum over
    layers of the layer's weight times the lost fraction of its demand (system.toml sets each
    layer's unit and weight); demands of different layers are never added.  CSV columns:
    rank, id, element, layer, score, nodes_lost, cross_layer_lost (nodes lost in other
    lifelines), lost_<layer> (nodes) per layer in name order, then demand_lost_<layer> (in the
    layer's unit); JSON is an object with the layers' "units" and "weights", "ranking" (the
    same records) and "worst_set" when -k is given.  --workers / --scheduler run the sweeps
    on Dask (the system is sent to each worker once); the results are those of threads.
    """
    if k is not None and fmt == "csv":
        raise InputError("--k has no CSV form: use --format table or json")
    if workers is not None and scheduler is not None:
        raise InputError("give either --workers or --scheduler, not both")
    if threads is not None and (workers is not None or scheduler is not None):
        raise InputError("--threads runs locally; it cannot be combined with --workers or --scheduler")
    if engine != "core" and (workers is not None or scheduler is not None):
        raise InputError("--workers/--scheduler run the core engine only (not --engine reference)")
    system, compiled = load(system_dir)
    if layer is not None and layer not in compiled.layer_names:
        raise InputError(f"unknown layer '{layer}' (layers: {', '.join(compiled.layer_names)})", "--layer")
    if compiled.has_flow_layers and (workers is not None or scheduler is not None):
        raise InputError("--workers/--scheduler: the sweep of flow layers runs on threads only "
                         "(use --threads)")
    cluster = None
    if workers is not None or scheduler is not None:   # cascade.cluster imports the hazards
        from ..cluster import open_cluster

        cluster = open_cluster(scheduler, workers)
    try:
        _run(system, compiled, top, elements, layer, k, compare, fmt, output, threads, engine,
             csv_safe, cluster)
    finally:
        if cluster is not None:
            cluster.close()


def _run(system, compiled, top, elements, layer, k, compare, fmt, output, threads, engine, csv_safe,
         cluster):
    threads = threads or default_threads()
    start = time.perf_counter()
    ranking = sweep_ranking(system, elements, threads=threads, engine=engine, compiled=compiled,
                            layer=layer, progress=show_progress(), cluster=cluster)
    seconds = time.perf_counter() - start
    release_memory()   # the sweep's buffers, before the table is built
    if top is None:
        top = TABLE_TOP if fmt == "table" else 0
    # The whole table only where every row is shown; else the shown rows alone, without a
    # million id strings (the comparisons work on the ranking's arrays).
    shown = ranking.frame() if top == 0 and fmt != "csv" else \
        (ranking.head(top) if top else None)
    start = time.perf_counter()
    worst = (greedy_worst_set(system, k, elements, threads=threads, engine=engine, compiled=compiled,
                              layer=layer, progress=show_progress(), cluster=cluster) if k else None)
    worst_seconds = time.perf_counter() - start if k else None

    if fmt == "csv":
        if shown is None:   # every row: written in chunks from the ranking's arrays
            emit_chunks(csv_chunks(ranking, csv_safe), output)
        else:
            emit(csv_text(ranking_records(shown), csv_safe), output)
        return
    if fmt == "json":
        records = ranking_records(shown).to_dict(orient="records")
        emit(to_json(json_data(system, compiled, records, worst)), output)
        return

    comparison = spots = None
    info = {"count": len(ranking), "what": {"nodes": "nodes", "edges": "edges",
                                           "all": "nodes and edges"}[elements],
            "engine": engine, "threads": threads if engine == "core" else 1,
            "executor": cluster.label if cluster is not None else None,
            "seconds": seconds, "worst_seconds": worst_seconds, "k": k}
    if compare and len(ranking):
        start = time.perf_counter()
        spot_k = min(top or TABLE_TOP, len(ranking))
        if top and engine == "core" and not compiled.has_flow_layers:
            # The table's rows are built; the blind spots (on the arrays) need their own only.
            ranking.keep_layers(ranking.order(spot_k))
        release_memory()   # before the second sweep's buffers
        info["betweenness"] = betweenness_method(compiled)
        info["spot_k"] = spot_k
        comparison = compare_rankings(compiled, ranking, top=spot_k, threads=threads)
        spots = blind_spots(system, ranking, top=spot_k, threads=threads, engine=engine, layer=layer,
                            progress=show_progress(), cluster=cluster)
        info["compare_seconds"] = time.perf_counter() - start
    emit(render_table(system, compiled, ranking, shown, worst, comparison, spots, info,
                      _kinds(system, compiled, shown)), output)
