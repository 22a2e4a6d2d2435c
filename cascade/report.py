"""Figures and the HTML report: a map of the lifelines and a page a planner can open.

:func:`draw_map` draws each layer in its own colour on its coordinates (edges as lines, sources
as triangles, dependencies as thin dashed lines between layers) and marks a result on top: the
nodes a cascade failed, the most critical elements of an N-1 ranking, or the failure
probabilities of a hazard scenario.  :func:`build_report` writes ``index.html`` with its PNGs:
the system summary (``cascade info``), the critical elements (N-1 sweep,
:mod:`cascade.criticality`), the scenario's loss distribution (Monte Carlo,
:mod:`cascade.ensemble`) and recovery curves (:mod:`cascade.recovery`; the resilience triangle
of Bruneau et al. 2003, "A framework to quantitatively assess and enhance the seismic resilience
of communities", Earthquake Spectra 19(4)).

matplotlib runs on the Agg backend: no display is needed.
"""
from __future__ import annotations

import datetime as _dt
import html
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .progress import ProgressArg, tracker
from .system import InfrastructureSystem

LAYER_COLOURS = {"power": "#e69f00", "water": "#0072b2", "gas": "#009e73", "transport": "#7f7f7f",
                 "communication": "#8e44ad"}
EXTRA_COLOURS = ["#56b4e9", "#cc79a7", "#8c564b", "#bcbd22", "#17becf", "#f0e442"]
FAILED = "#d62728"


def layer_colours(layers) -> dict[str, str]:
    """A colour per layer: the five lifelines have fixed ones, other layers take the next free."""
    out, k = {}, 0
    for name in layers:
        if name in LAYER_COLOURS:
            out[name] = LAYER_COLOURS[name]
        else:
            out[name] = EXTRA_COLOURS[k % len(EXTRA_COLOURS)]
            k += 1
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def literal_text(draw):
    """Decorator for every function that draws a figure: user text (layer, system and
    scenario names, titles, ids) is drawn as written.  matplotlib would read ``$...$`` as math
    and stop with a parse error on names like ``a$^$b``; ``text.parse_math = False`` for every
    text made while drawing turns that off."""
    import functools

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
            return draw(*args, **kwargs)
    return wrapper


@literal_text
def draw_map(system: InfrastructureSystem, result=None, output: str | os.PathLike | None = None, *,
             top: int = 10, title: str | None = None, dpi: int = 150, ax=None):
    """Draw the lifelines of ``system`` on their coordinates and mark ``result`` on them.

    Parameters
    ----------
    system : InfrastructureSystem
        Nodes need ``x`` and ``y``; nodes without them are left out of the picture.
    result : cascade.io.geojson.ResultProperties, optional
        ``simulate``: failed nodes as red crosses, initial failures circled, edges that are no
        longer usable in red; a flow system's result (:func:`flow_state`, or its simulate JSON
        read back) also colours each rated ``dcflow`` branch by its loading |flow| / capacity
        (colour bar), draws tripped branches as black dashes and partly served nodes as squares,
        and (``flow`` layers, :mod:`cascade.routing`) the bottleneck pipes in purple and the other
        rated pipes by their loading in one routing (a second colour bar).  ``ranking``: the ``top`` most critical elements numbered.
        ``probability``: nodes coloured by ``p_fail``.
    output : path, optional
        Where to save the figure (PNG, SVG or PDF by suffix).  Without it the figure is returned.
    top : int
        How many ranked elements to mark.
    title : str, optional
    dpi : int
    ax : matplotlib.axes.Axes, optional
        Draw into this axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    InputError
        When no node has coordinates.
    """
    plt = _pyplot()
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    nodes, edges = system.nodes, system.edges
    xy = nodes[["x", "y"]].to_numpy(float)
    has = np.isfinite(xy).all(axis=1)
    if not has.any():
        raise InputError("no node has coordinates (x, y): nothing to draw", system.name)
    pos = pd.DataFrame(xy, index=nodes["id"], columns=["x", "y"])
    colours = layer_colours(system.layers)
    if ax is None:
        span = np.ptp(xy[has], axis=0)
        aspect = float(np.clip(span[1] / span[0], 0.5, 1.6)) if span[0] > 0 else 1.0
        fig, ax = plt.subplots(figsize=(10, max(5.0, 9.0 * aspect)), constrained_layout=True)
    else:
        fig = ax.figure
    a = pos.reindex(edges["source"]).to_numpy(float)
    b = pos.reindex(edges["target"]).to_numpy(float)
    edge_ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    edge_layer = edges["source"].map(dict(zip(nodes["id"], nodes["layer"]))).to_numpy()
    handles = []
    # Dependencies first, underneath: which supplier each dependent relies on.
    deps = system.dependencies
    if len(deps):
        da = pos.reindex(deps["dependent"]).to_numpy(float)
        db = pos.reindex(deps["supplier"]).to_numpy(float)
        ok = np.isfinite(da).all(axis=1) & np.isfinite(db).all(axis=1)
        if ok.any():
            ax.add_collection(LineCollection(np.stack([da[ok], db[ok]], axis=1), colors="#555555",
                                             linewidths=0.7, linestyles=(0, (2, 2)), alpha=0.6, zorder=1))
            handles.append(Line2D([], [], color="#555555", lw=0.8, ls=(0, (2, 2)), label="dependency"))
    for layer in system.layers:
        colour = colours[layer]
        sel = edge_ok & (edge_layer == layer)
        if sel.any():
            ax.add_collection(LineCollection(np.stack([a[sel], b[sel]], axis=1), colors=colour,
                                             linewidths=1.0, alpha=0.85, zorder=2))
        in_layer = has & (nodes["layer"] == layer).to_numpy()
        src = in_layer & (nodes["kind"] == "source").to_numpy()
        plain = in_layer & ~src
        size = 6 if in_layer.sum() > 2000 else 12
        ax.scatter(xy[plain, 0], xy[plain, 1], s=size, c=colour, linewidths=0, zorder=3)
        ax.scatter(xy[src, 0], xy[src, 1], s=90, c=colour, marker="^", edgecolors="black",
                   linewidths=0.8, zorder=5)
        n_nodes = int((nodes["layer"] == layer).sum())
        handles.append(Line2D([], [], color=colour, lw=2, marker="o", ms=4,
                              label=f"{layer} ({n_nodes} nodes, {int(sel.sum())} edges)"))
    handles.append(Line2D([], [], ls="", marker="^", mfc="white", mec="black", ms=8, label="source"))
    subtitle = ""
    if result is not None and result.kind == "simulate":
        working = result.nodes["working"].reindex(nodes["id"]).fillna(True).to_numpy(bool)
        initial = result.nodes["initial"].reindex(nodes["id"]).fillna(False).to_numpy(bool)
        usable = result.edges["usable"].reindex(edges["id"]).fillna(True).to_numpy(bool)
        dead = edge_ok & ~usable
        if dead.any():
            ax.add_collection(LineCollection(np.stack([a[dead], b[dead]], axis=1), colors=FAILED,
                                             linewidths=1.4, alpha=0.8, zorder=4))
        f = has & ~working
        ax.scatter(xy[f, 0], xy[f, 1], s=28, c=FAILED, marker="x", linewidths=1.3, zorder=6)
        i = has & initial
        ax.scatter(xy[i, 0], xy[i, 1], s=260, facecolors="none", edgecolors=FAILED, linewidths=2.2, zorder=7)
        intact = not initial.any() and not result.edges["initial"].any() and working.all()
        if not intact:
            handles += [Line2D([], [], ls="", marker="x", color=FAILED, ms=7,
                               label=f"failed ({int((~working).sum())})"),
                        Line2D([], [], ls="", marker="o", mfc="none", mec=FAILED, ms=12, mew=2,
                               label="initial failure"),
                        Line2D([], [], color=FAILED, lw=1.6, label="edge out of use")]
        subtitle = f"cascade: {int((~working).sum())} of {len(nodes)} nodes failed"
        if intact:
            subtitle = "intact state"
        if "flow" in result.edges.columns or "routing" in result.edges.columns:
            subtitle = _draw_loading(ax, system, result, a, b, edge_ok, has, xy, handles, fig, subtitle)
    elif result is not None and result.kind == "ranking" and top > 0:
        ranked = []
        for table, is_node in ((result.nodes, True), (result.edges, False)):
            if len(table) and "rank" in table.columns:
                ranked += [(int(r), idx, is_node) for idx, r in table["rank"].items()]
        ranked.sort()
        labels: dict[tuple, list[int]] = {}  # co-located elements (a bus and its transformer) share a label
        for r, ident, is_node in ranked[:top]:
            if is_node:
                p = pos.loc[ident].to_numpy(float)
                if not np.isfinite(p).all():
                    continue
                ax.scatter([p[0]], [p[1]], s=240, facecolors="none", edgecolors="black", linewidths=2, zorder=7)
            else:
                row = edges.index[edges["id"] == ident][0]
                if not edge_ok[row]:
                    continue
                ax.plot([a[row, 0], b[row, 0]], [a[row, 1], b[row, 1]], color="black", lw=3.5, zorder=7)
                p = (a[row] + b[row]) / 2
                if np.allclose(a[row], b[row]):  # an edge of length 0 is invisible as a line
                    ax.scatter([p[0]], [p[1]], s=240, facecolors="none", edgecolors="black", linewidths=2,
                               zorder=7)
            labels.setdefault((round(float(p[0]), 1), round(float(p[1]), 1)), []).append(r)
        for (px, py), ranks in labels.items():
            ax.annotate(",".join(map(str, ranks)), (px, py), xytext=(7, 7), textcoords="offset points",
                        fontsize=9, fontweight="bold", zorder=8,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "black", "lw": 0.6})
        handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec="black", ms=12, mew=2,
                              label=f"most critical (top {min(top, len(ranked))}, numbered)"))
        subtitle = "N-1 criticality: numbered by score (weighted lost fractions of the layers' demands)"
    elif result is not None and result.kind == "probability":
        p = result.nodes["p_fail"].reindex(nodes["id"]).fillna(0.0).to_numpy(float)
        sel = has & (p > 0)
        if sel.any():
            order = np.flatnonzero(sel)[np.argsort(p[sel])]
            sc = ax.scatter(xy[order, 0], xy[order, 1], c=p[order], s=10 + 60 * p[order], cmap="Reds",
                            vmin=0, vmax=1, edgecolors="black", linewidths=0.3, zorder=6)
            fig.colorbar(sc, ax=ax, shrink=0.6, label="probability of failure")
        listed = int(np.count_nonzero(result.nodes["p_fail"].to_numpy(float) > 0))
        failing = int(result.meta.get("failing", listed))
        subtitle = f"scenario: {failing:,} node(s) fail in some sample"
        if listed < failing:
            subtitle += f"; the file lists the {listed:,} most likely"
        if int(sel.sum()) < listed:
            subtitle += f"; {int(sel.sum()):,} drawn (the others have no coordinates)"
    ax.set_aspect("equal", adjustable="datalim")
    ax.autoscale_view()
    unit = f" ({system.crs})" if system.crs else ""
    ax.set_xlabel(f"x{unit}")
    ax.set_ylabel(f"y{unit}")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=8)
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9)
    ax.set_title(title or (system.name + (f" — {subtitle}" if subtitle else "")), fontsize=12)
    if output is not None:  # whole or not at all: a failed save leaves no partial file
        import io

        from .io.csv_dir import write_atomic

        buf = io.BytesIO()
        try:
            fig.savefig(buf, format=Path(output).suffix.lstrip(".").lower() or "png", dpi=dpi)
        finally:
            plt.close(fig)
        write_atomic(output, buf.getvalue())
    return fig


LOADING_CMAP = "viridis"        # perceptually uniform; readable in grey and by colour-blind readers
TRIPPED = "#000000"
PARTIAL = "#e7298a"
ROUTING_CMAP = "cividis"        # flow layers' pipes: another scale than dcflow's, another quantity
BOTTLENECK = "#762a83"


def _draw_loading(ax, system, result, a, b, edge_ok, has, xy, handles, fig, subtitle) -> str:
    """Flow layers on a ``simulate`` result: each rated branch of a ``dcflow`` layer coloured
    by its loading |flow| / capacity (0 to 100 %, above 100 % at the top colour), branches
    tripped on overload as thick black dashes, nodes served only in part as pink squares; the
    pipes of ``flow`` layers by :func:`_draw_routing`.  Returns the subtitle with the counts."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    edges = system.edges
    capacity = (edges["capacity"].to_numpy(float) if "capacity" in edges.columns
                else np.full(len(edges), np.nan))
    parts = []
    if "routing" in result.edges.columns:
        parts += _draw_routing(ax, system, result, a, b, edge_ok, capacity, handles, fig)
    flow = (result.edges["flow"].reindex(edges["id"]).to_numpy(float) if "flow" in result.edges.columns
            else np.full(len(edges), np.nan))
    rated = edge_ok & np.isfinite(flow) & np.isfinite(capacity) & (capacity > 0)
    if rated.any():
        loading = np.abs(flow[rated]) / capacity[rated]
        order = np.argsort(loading, kind="stable")           # the most loaded on top
        segments = np.stack([a[rated], b[rated]], axis=1)[order]
        norm = Normalize(0.0, 1.0)
        lines = LineCollection(segments, cmap=LOADING_CMAP, norm=norm, linewidths=2.6, zorder=4.5)
        lines.set_gid("dcflow-loading")
        lines.set_array(np.minimum(loading[order], 1.0))
        ax.add_collection(lines)
        bar = fig.colorbar(lines, ax=ax, shrink=0.6, pad=0.01)
        bar.set_label("line loading |flow| / capacity (dcflow branches; yellow = at or above 100 %)")
        bar.set_ticks([0, 0.25, 0.5, 0.75, 1.0], labels=["0 %", "25 %", "50 %", "75 %", "100 %"])
        parts.insert(0, f"{int(rated.sum())} rated branches, the most loaded at {100 * loading.max():.0f} %")
    if "tripped" in result.edges.columns:
        tripped = result.edges["tripped"].reindex(edges["id"]).fillna(False).to_numpy(bool) & edge_ok
        if tripped.any():
            ax.add_collection(LineCollection(np.stack([a[tripped], b[tripped]], axis=1), colors=TRIPPED,
                                             linewidths=3.0, linestyles=(0, (3, 1.5)), zorder=6.5))
            handles.append(Line2D([], [], color=TRIPPED, lw=2.4, ls=(0, (3, 1.5)),
                                  label=f"tripped on overload ({int(tripped.sum())})"))
            parts.append(f"{int(tripped.sum())} tripped")
    if "served" in result.nodes.columns:
        served = result.nodes["served"].reindex(system.nodes["id"]).to_numpy(float)
        partial = has & np.isfinite(served) & (served < 1 - 1e-9)
        if partial.any():
            ax.scatter(xy[partial, 0], xy[partial, 1], s=12, marker="s", facecolors="none",
                       edgecolors=PARTIAL, linewidths=1.0, zorder=6)
            handles.append(Line2D([], [], ls="", marker="s", mfc="none", mec=PARTIAL, ms=6,
                                  label=f"served in part ({int(partial.sum())})"))
            parts.append(f"{int(partial.sum())} served in part")
    return subtitle + ("\n" + ", ".join(parts) if parts else "")


def _draw_routing(ax, system, result, a, b, edge_ok, capacity, handles, fig) -> list[str]:
    """The pipes of ``flow`` layers (:mod:`cascade.routing`): bottleneck pipes (at capacity in
    every routing of the served amounts: unique) as thick purple lines; every other rated pipe
    coloured by its loading in the routing the kernel found, with its own colour bar that says
    it is one routing of several.  Returns the title's counts."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    edges = system.edges
    routing = result.edges["routing"].reindex(edges["id"]).to_numpy(float)
    neck = (result.edges["bottleneck"].reindex(edges["id"]).fillna(False).to_numpy(bool)
            if "bottleneck" in result.edges.columns else np.zeros(len(edges), bool))
    rated = edge_ok & np.isfinite(routing) & np.isfinite(capacity) & (capacity > 0)
    plain = rated & ~neck
    parts = []
    if plain.any():
        loading = np.abs(routing[plain]) / capacity[plain]
        order = np.argsort(loading, kind="stable")
        lines = LineCollection(np.stack([a[plain], b[plain]], axis=1)[order], cmap=ROUTING_CMAP,
                               norm=Normalize(0.0, 1.0), linewidths=2.0, zorder=4.4)
        lines.set_gid("flow-routing")
        lines.set_array(np.minimum(loading[order], 1.0))
        ax.add_collection(lines)
        layers = [name for name, rule in system.layer_rules().items() if rule == "flow"]
        units = sorted({system.layer_unit(name) or "no unit" for name in layers})
        bar = fig.colorbar(lines, ax=ax, shrink=0.6, pad=0.01)
        bar.set_label(f"pipe loading |flow| / capacity ({', '.join(layers)}; flow and capacity in "
                      f"{', '.join(units)}):\none routing of the served amounts (not unique)")
        bar.set_ticks([0, 0.25, 0.5, 0.75, 1.0], labels=["0 %", "25 %", "50 %", "75 %", "100 %"])
    shown = neck & edge_ok
    if shown.any():
        ax.add_collection(LineCollection(np.stack([a[shown], b[shown]], axis=1), colors=BOTTLENECK,
                                         linewidths=3.6, zorder=4.6, gid="flow-bottleneck"))
    if rated.any():
        handles.append(Line2D([], [], color=BOTTLENECK, lw=3.0,
                              label=f"bottleneck pipe: full in every routing ({int(neck.sum())})"))
        parts.append(f"{int(rated.sum())} rated pipes, {int(neck.sum())} bottleneck(s)")
    return parts


def flow_state(system: InfrastructureSystem, fail=(), compiled=None):
    """The properties :func:`draw_map` marks for a system with flow layers: its intact state
    (``fail`` empty: the base loading) or the cascade from ``fail`` (node and edge ids), as
    :func:`cascade.io.geojson.read_result` reads a ``simulate --format json`` file."""
    from .io.geojson import simulate_properties
    from .simulation import simulate

    return simulate_properties(simulate(system, list(fail), compiled=compiled).to_dict(), system)


def has_flow_layers(system: InfrastructureSystem) -> bool:
    from .system import FLOW_RULES

    return any(rule in FLOW_RULES for rule in system.layer_rules().values())


# ---------------------------------------------------------------------- HTML report
def _swept(elements: str, layer: str | None) -> str:
    what = {"all": "node and edge", "nodes": "node", "edges": "edge"}[elements]
    return what + (f" of layer {html.escape(layer)}" if layer is not None else "")


def _table_html(frame: pd.DataFrame, formats: dict | None = None) -> str:
    formats = formats or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for col, v in zip(frame.columns, row):
            text = formats[col](v) if col in formats else (f"{v:,.4g}" if isinstance(v, float) else str(v))
            num = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            cells.append(f'<td class="{"num" if num else ""}">{html.escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _pct(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f} %"


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}th,td{padding:.25em .7em;border-bottom:1px solid #e3e3e3}
th{background:#f4f4f4;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}.note{color:#666;font-size:.9em}
.warn{background:#fff4e5;border-left:4px solid #e69f00;padding:.4em .8em}
nav a{margin-right:1em}
"""


@literal_text
def _figure_loss(ens, path: Path) -> None:
    plt = _pyplot()
    names = list(ens.compiled.layer_names)
    colours = layer_colours(names)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    overall = 100 * ens.loss[:, -1]
    ax1.hist(overall, bins=min(40, max(10, ens.samples // 10)), color="#444444", alpha=0.85)
    for q, ls in ((50, "-"), (95, "--")):
        v = np.percentile(overall, q)
        ax1.axvline(v, color=FAILED, ls=ls, lw=1.2, label=f"p{q} = {v:.1f} %")
    ax1.set_xlabel("overall service loss (%, weighted mean of the layers' losses)")
    ax1.set_ylabel("samples")
    ax1.set_title(f"Loss over {ens.samples} samples")
    ax1.legend(fontsize=8)
    box = ax2.boxplot([100 * ens.loss[:, i] for i in range(len(names))], vert=True, patch_artist=True,
                      showfliers=True, flierprops={"markersize": 2},
                      medianprops={"color": "black"})
    for patch, name in zip(box["boxes"], names):
        patch.set_facecolor(colours[name])
        patch.set_alpha(0.8)
    ax2.set_xticks(range(1, len(names) + 1), names, rotation=20)
    ax2.set_ylabel("service loss (%)")
    ax2.set_title("Loss per lifeline")
    fig.savefig(path, dpi=120)
    plt.close(fig)


@literal_text
def _figure_recovery(results: dict, names: list[str], path: Path) -> None:
    plt = _pyplot()
    colours = layer_colours(names)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    styles = ["-", "--", ":", "-."]
    for k, (strategy, rec) in enumerate(results.items()):
        c = rec.curve
        ax1.step(c["time"], 100 * c["service"], where="post", ls=styles[k % 4], lw=1.8,
                 label=f"{strategy} (loss {rec.metrics['resilience_loss']:.1f} h)")
    ax1.set_xlabel("hours after the event")
    ax1.set_ylabel("service, all lifelines (%)")
    ax1.set_title("Recovery by strategy")
    ax1.legend(fontsize=8)
    first = next(iter(results.values()))
    for name in names:
        if name in first.curve.columns:
            ax2.step(first.curve["time"], 100 * first.curve[name], where="post", color=colours[name],
                     lw=1.6, label=name)
    ax2.set_xlabel("hours after the event")
    ax2.set_ylabel("service (%)")
    ax2.set_title(f"Per lifeline ({next(iter(results))})")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(True, lw=0.3, alpha=0.5)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build_report(system_dir: str | os.PathLike, scenario_path: str | os.PathLike, output: str | os.PathLike,
                 *, samples: int | None = None, seed: int | None = None, top: int = 15,
                 strategies=("greedy", "random"), crews=1, threads: int | None = None,
                 elements: str = "all", layer: str | None = None, progress: ProgressArg = None) -> dict:
    """Write an HTML report of a system under a hazard scenario into the directory ``output``.

    Sections: the system summary and map; the critical elements (N-1 sweep of nodes and edges,
    top ``top``) and their map; the scenario's loss distribution and failure-probability map;
    recovery curves of one bad sample (the one whose overall loss is nearest the 90th
    percentile) under each of ``strategies``.  ``elements`` ("nodes", "edges" or "all") and
    ``layer`` choose the elements of the N-1 sweep (:func:`cascade.criticality.sweep`).
    On a system with flow layers (docs/format.md (v2)) the summary map shows the intact
    system's line loading and the recovery curves follow served amounts
    (:mod:`cascade.recovery`).  A section whose module is missing is left out and
    the page says so.  ``progress`` counts the work of all sections in one bar: the summary,
    each element of the N-1 sweep, each sample, each recovery and each figure (see
    :mod:`cascade.progress`).

    Returns
    -------
    dict
        ``{"index": path of index.html, "figures": [...], "sections": [...], "missing": [...],
        "seconds": {...}}``.
    """
    from .compiled import compile_system
    from .io import read_system
    from .io.geojson import ResultProperties
    from .summary import describe

    out = Path(output)
    if out.exists() and not out.is_dir():
        raise InputError("is a file; --output names a directory", str(out))
    system = read_system(system_dir)
    compiled = compile_system(system)
    flows = has_flow_layers(system)
    bar = tracker(progress, 1, "report", "step")
    sections, figures, missing, seconds = [], [], [], {}
    html_parts = []
    pending: dict[str, object] = {}  # figure name -> callable writing it

    # 1. the system
    t0 = time.perf_counter()
    info = describe(system, compiled)
    rows = pd.DataFrame([{"layer": k, "rule": v["rule"], "nodes": v["nodes"], "edges": v["edges"],
                          "sources": v["sources"], "demand": v["demand"],
                          "unit": system.layer_unit(k) or "(no unit)", "weight": system.layer_weight(k),
                          "never work": v["never_work"]}
                         for k, v in info["layers"].items()])
    part = ['<section id="summary"><h2>The system</h2>',
            f"<p>{info['nodes']:,} nodes, {info['edges']:,} edges, {info['dependencies']:,} dependency rows in "
            f"{info['groups']:,} groups ({info['groups_with_alternatives']:,} with alternative suppliers, "
            f"{info['groups_with_backup']:,} with backup hours)"
            + (f"; coordinates in {html.escape(str(info['crs']))}" if info["crs"] else "") + ".</p>",
            _table_html(rows, {"demand": lambda v: f"{v:,.1f}"})]
    if info["couplings"]:
        part.append("<p>Dependencies (dependent layer ← supplier layer): "
                    + ", ".join(f"{html.escape(k)}: {v}" for k, v in info["couplings"].items()) + ".</p>")
    for w in info["warnings"]:
        part.append(f'<p class="warn">{html.escape(w)}</p>')
    has_xy = np.isfinite(system.nodes[["x", "y"]].to_numpy(float)).all(axis=1).any()
    if has_xy:
        base = flow_state(system, compiled=compiled) if flows else None
        pending["map.png"] = lambda p: draw_map(
            system, base, p, title=f"{system.name}: the lifelines" + (", line loading intact" if flows else ""))
        part.append('<img src="map.png" alt="map of the lifelines">')
    part.append("</section>")
    html_parts.append("".join(part))
    sections.append("summary")
    seconds["summary"] = time.perf_counter() - t0
    bar.update()

    # 2. critical elements
    try:
        from .criticality import sweep
    except ImportError:
        sweep = None
        missing.append("critical elements (cascade.criticality is not installed)")
    if sweep is not None:
        t0 = time.perf_counter()
        if layer is not None and layer not in compiled.layer_names:
            raise InputError(f"no layer '{layer}' (layers: {', '.join(compiled.layer_names)})", str(system_dir))
        in_layer = (np.ones(compiled.n_nodes, bool) if layer is None else
                    np.asarray(compiled.node_layer) == list(compiled.layer_names).index(layer))
        bar.grow(int(in_layer.sum()) * (elements != "edges")
                 + int(in_layer[np.asarray(compiled.edge_src)].sum()) * (elements != "nodes"))
        ranking = sweep(system, elements=elements, threads=threads, compiled=compiled, layer=layer,
                        progress=bar.part())
        seconds["critical"] = time.perf_counter() - t0
        shown = ranking.head(top)
        # Demand lost per layer in the layer's unit; ranked by the unit-free score.
        lost_cols = {f"demand_lost_{name}": f"{name} lost ({system.layer_unit(name) or 'no unit'})"
                     for name in compiled.layer_names}
        cols = ["id", "element", "layer", "score", "nodes_lost", "cross_layer_lost", *lost_cols]
        view = shown[cols].reset_index(drop=True).rename(
            columns={"nodes_lost": "nodes lost", "cross_layer_lost": "nodes lost in other lifelines",
                     **lost_cols})
        part = ['<section id="critical"><h2>Critical elements</h2>',
                f"<p>Every {_swept(elements, layer)} failed alone (N-1, {len(ranking):,} cascades); the {len(shown)} with "
                "the highest <em>score</em> (the sum over layers of the layer's weight times the lost fraction "
                "of its demand; unit-free, demands of different layers are never added), then the most nodes. "
                "Demand lost is given per layer in that layer's unit.</p>",
                _table_html(view, {"score": lambda v: f"{v:.3f}",
                                   **{label: (lambda v: f"{v:,.1f}") for label in lost_cols.values()}})]
        if has_xy:
            ranked = shown.assign(rank=np.arange(1, len(shown) + 1))
            nodes_r = ranked[ranked["element"] == "node"].set_index("id")[["rank", "score"]]
            edges_r = ranked[ranked["element"] == "edge"].set_index("id")[["rank", "score"]]
            props = ResultProperties("ranking", nodes_r, edges_r)
            pending["critical.png"] = lambda p: draw_map(system, props, p, top=top,
                                                         title=f"{system.name}: the {len(shown)} most critical elements")
            part.append('<img src="critical.png" alt="map of the most critical elements">')
        part.append("</section>")
        html_parts.append("".join(part))
        sections.append("critical")

    # 3. the scenario
    ens = None
    try:
        from .ensemble import run_ensemble
        from .hazards import load_scenario
    except ImportError:
        missing.append("loss distribution (cascade.ensemble or cascade.hazards is not installed)")
        run_ensemble = None
    if run_ensemble is not None:
        scenario = load_scenario(scenario_path)
        scenario.check_system(system, system_dir)
        n = samples or scenario.samples or 1000
        t0 = time.perf_counter()
        bar.grow(n)
        ens = run_ensemble(system, scenario, n, seed=seed, threads=threads, compiled=compiled,
                           progress=bar.part())
        seconds["scenario"] = time.perf_counter() - t0
        summary = ens.summary()
        probs = ens.node_probability()
        likely = probs[probs["p_fail"] > 0].head(top)
        hazard = getattr(scenario.hazard, "type", "")
        part = ['<section id="loss"><h2>Loss distribution</h2>',
                f"<p>Scenario <strong>{html.escape(str(scenario.name))}</strong>"
                + (f" ({html.escape(str(hazard))})" if hazard else "")
                + f": {ens.samples:,} samples, seed {ens.seed}. Service loss is the share of demand no longer "
                "served (or of nodes, in a layer without demand), after the cascade.</p>",
                _table_html(summary, {c: _pct for c in ("mean", "p5", "p50", "p95", "mean_low",
                                                        "mean_high")})]
        pending["loss.png"] = lambda p: _figure_loss(ens, p)
        part.append('<img src="loss.png" alt="loss distribution">')
        if len(likely):
            part.append("<p>Most likely failures (hazard = hit directly, cascade = failed without being hit):</p>")
            part.append(_table_html(likely.reset_index(drop=True),
                                    {c: _pct for c in ("p_fail", "p_direct", "p_cascade")}))
            if has_xy:
                props_p = ResultProperties("probability", probs.set_index("id")[["p_fail"]],
                                           pd.DataFrame(index=pd.Index([], name="id")))
                pending["probability.png"] = lambda p: draw_map(
                    system, props_p, p, title=f"{system.name}: probability of failure, {scenario.name}")
                part.append('<img src="probability.png" alt="map of failure probabilities">')
        part.append("</section>")
        html_parts.append("".join(part))
        sections.append("loss")

    # 4. recovery
    try:
        from .recovery import recover
    except ImportError:
        recover = None
        missing.append("recovery curves (cascade.recovery is not installed)")
    if recover is not None and ens is not None and ens.samples:
        overall = ens.loss[:, -1]
        pick = int(np.argmin(np.abs(overall - np.percentile(overall, 90)) + 1e-12 * np.arange(len(overall))))
        scenario.prepare(system, compiled)
        node_idx, edge_idx = scenario.sample(compiled, pick)
        failed = [str(compiled.node_ids[i]) for i in node_idx] + [str(compiled.edge_ids[i]) for i in edge_idx]
        part = ['<section id="recovery"><h2>Recovery curves</h2>']
        if not failed:
            part.append("<p>The chosen sample fails nothing: there is nothing to repair.</p>")
        else:
            t0 = time.perf_counter()
            bar.grow(len(strategies) * len(failed))
            results = {s: recover(system, failed, strategy=s, crews=crews, compiled=compiled,
                                  progress=bar.part()) for s in strategies}
            seconds["recovery"] = time.perf_counter() - t0
            part.append(f"<p>Sample {pick} of the scenario (overall loss {_pct(float(overall[pick]))}, near the "
                        f"90th percentile): {len(node_idx)} node(s) and {len(edge_idx)} edge(s) hit, repaired by "
                        f"{crews} crew(s) per lifeline. Resilience loss is the area above the service curve "
                        "(hours of lost service).</p>")
            metrics = pd.DataFrame([{"strategy": s, "resilience loss (h)": r.metrics["resilience_loss"],
                                     "restored after (h)": r.metrics["restoration_time"],
                                     "90 % after (h)": r.metrics["time_to_90"],
                                     "peak loss": r.metrics["peak_loss"]} for s, r in results.items()])
            part.append(_table_html(metrics, {"peak loss": _pct}))
            pending["recovery.png"] = lambda p: _figure_recovery(results, list(compiled.layer_names), p)
            part.append('<img src="recovery.png" alt="recovery curves">')
        part.append("</section>")
        html_parts.append("".join(part))
        sections.append("recovery")

    # Everything is written into a temporary directory next to --output and moved into place at
    # the end: a failure on the way leaves no partial report.
    anchor = out.parent
    while not anchor.exists():
        anchor = anchor.parent
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=anchor))
    bar.grow(len(pending))
    try:
        for name, write in pending.items():
            write(staging / name)
            figures.append(str(out / name))
            bar.update()
        _write_page(staging, sections, missing, html_parts, system, system_dir, scenario_path)
        os.chmod(staging, 0o777 & ~_umask())
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, out)
        else:  # an existing directory: replace our files one by one, keep the others
            for item in sorted(staging.iterdir()):
                os.replace(item, out / item.name)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    bar.close()
    index = out / "index.html"
    return {"index": str(index), "figures": figures, "sections": sections, "missing": missing,
            "seconds": seconds}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_page(out: Path, sections, missing, html_parts, system, system_dir, scenario_path) -> None:
    from .io.csv_dir import write_atomic

    nav = "".join(f'<a href="#{s}">{t}</a>' for s, t in
                  (("summary", "System"), ("critical", "Critical elements"), ("loss", "Loss distribution"),
                   ("recovery", "Recovery")) if s in sections)
    note = "".join(f'<p class="warn">Left out: {html.escape(m)}.</p>' for m in missing)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(system.name)}: cascade report</title><style>{CSS}</style></head><body>"
            f"<h1>{html.escape(system.name)}: cascading failures report</h1>"
            f"<p class=\"note\">Made by cascade on {stamp} from <code>{html.escape(str(system_dir))}</code> and "
            f"<code>{html.escape(str(scenario_path))}</code>.</p><nav>{nav}</nav>{note}"
            + "".join(html_parts) + "</body></html>\n")
    write_atomic(out / "index.html", page)
