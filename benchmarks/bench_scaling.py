"""How the static cascade and the N-1 sweep grow with system size (``make bench-scaling``).

A script, not a pytest-benchmark module (it is excluded from ``pytest benchmarks``): it measures
the Cython core alone at N = 10^3, 10^4, 10^5, 10^6 nodes in total and fits the exponent b of
``time ~ a N^b`` by least squares on log time against log N.

Systems: two fully coupled Erdős–Rényi layers of N/2 nodes each, mean degree k = 4
(:func:`cascade.generators.coupled_er`, seed 8; Buldyrev et al., Nature 464, 1025, 2010), with

* ``giant``: both layers under the ``giant`` rule (the percolation model itself);
* ``source``: the same graphs under the ``source`` rule, node 0 of each layer its one source;

and ``lifelines``: :func:`cascade.criticality.synthetic_lifelines` (five radial lifelines with
loops, ``source`` and ``giant`` rules, dependency groups, every node working when intact: the
shape of a city's networks, where the sweep runs incrementally with local re-checks).

Kernels:

* ``cascade``: :meth:`cascade.Workspace.run` from a seeded random removal of 30 % of layer A
  (p = 0.7; on ``lifelines`` 10 % of all nodes), the fastest of several repeats.  A round costs O(N) (the rule of each layer that
  lost nodes is re-applied over the whole layer) and the number of rounds grows with N near the
  transition (the ``rounds`` column), hence an exponent above 1; the O(N log N) algorithm of
  Schneider, Araújo, Herrmann (PRE 87, 043302, 2013) would avoid that;
  Each ``cascade`` row also has ``bfs_s`` (one plain compiled BFS over the same CSR,
  :func:`cascade._core.plain_bfs`), ``bfs_passes`` (the cascade's time in such passes; issue 15's
  target: at most 5 at 10^6 nodes) and ``whole_layer_s`` / ``whole_layer_bfs_passes`` (the v1
  kernel that re-applies each touched layer's rule over the whole layer every round);
* ``sweep``: :func:`cascade.criticality.core_sweep` (the kernel behind
  :func:`cascade.criticality.sweep`, without building the result table) over the nodes, one
  thread.  Where the sweep cannot run incrementally it runs a full cascade per element, O(N^2)
  in all, so past ``--full-sweep-max`` nodes it runs on a seeded random sample of the nodes
  (as many as fit in ``--sweep-budget`` seconds, judged from the previous size) and its time
  is scaled by N / sample (the ``scale`` column); the ``spread``
  column (relative standard deviation of the per-element time between the four kernel calls
  of the sample, one ``core_sweep`` call in four chunks) shows how much the per-element cost
  varies.  ``per_element_s`` is the time inside the kernel calls over the elements and
  ``setup_s`` the rest of the call (fixpoints, supply forest, buffers, and the renumbered
  layout when the sweep makes one: ``renumbered``, ``order_s``), both timed inside the same
  call (``core_sweep(stats=...)``), not obtained by subtracting a separately measured set-up;
  a sampled sweep's ``seconds`` is one set-up plus ``per_element_s`` times N;
  ``per_element_cpu_s`` is the same per element in the sweeping thread's CPU time
  (``kernel_cpu_s``), which load from other jobs inflates much less than wall time.

Writes ``benchmarks/results/scaling-<date>-<commit>.json`` (rows, fits, machine) and
``benchmarks/results/report/scaling.png``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from check import RESULTS, git  # noqa: E402

SEED = 8
REMOVAL_SEED = 20
SIZES = (1_000, 10_000, 100_000, 1_000_000)


def systems(n_total: int, names=("giant", "source", "lifelines")):
    """The ``giant``, ``source`` and ``lifelines`` systems of ``n_total`` nodes, compiled (only
    those in ``names``)."""
    from cascade import InfrastructureSystem, compile_system
    from cascade.criticality import synthetic_lifelines
    from cascade.generators import coupled_er

    out, compile_s = {}, None
    if "giant" in names or "source" in names:
        giant = coupled_er(n_total // 2, 4.0, seed=SEED)
        nodes = giant.nodes.copy()
        nodes.loc[nodes["id"].isin(["A0", "B0"]), "kind"] = "source"
        source = InfrastructureSystem.from_tables(nodes, giant.edges, giant.dependencies,
                                                  name=giant.name + "-source",
                                                  rules={"A": "source", "B": "source"})
        t = time.perf_counter()
        compiled_giant = compile_system(giant)
        compile_s = time.perf_counter() - t
        if "giant" in names:
            out["giant"] = compiled_giant
        if "source" in names:
            out["source"] = compile_system(source)
    if "lifelines" in names:
        out["lifelines"] = compile_system(synthetic_lifelines(n_total, seed=0))
    return out, compile_s


def time_cascade(compiled, min_total: float = 1.0, max_repeats: int = 50) -> tuple[float, int, int]:
    """Fastest time of ``Workspace.run`` from a 30 % removal of layer A.

    Returns (seconds, repeats, rounds of the cascade): each round re-applies the rule of the
    layers that lost nodes, in O(N), so the time grows like N x rounds.
    """
    from cascade import Workspace

    if compiled.layer_names == ["A", "B"]:
        pool, fraction = np.asarray(compiled.layer_nodes[compiled.layer_ptr[0]:compiled.layer_ptr[1]]), 0.3
    else:
        pool, fraction = np.arange(compiled.n_nodes), 0.1
    rng = np.random.default_rng(REMOVAL_SEED)
    init = np.sort(rng.choice(pool, size=int(round(fraction * len(pool))), replace=False))
    init = init.astype(compiled.index_dtype)
    ws = Workspace(compiled)
    best, total, repeats = np.inf, 0.0, 0
    while repeats < 3 or (total < min_total and repeats < max_repeats):
        t = time.perf_counter()
        ws.run(init)
        dt_ = time.perf_counter() - t
        best, total, repeats = min(best, dt_), total + dt_, repeats + 1
    return best, repeats, int(ws.fail_round.max())


def time_bfs(compiled, repeats: int = 5) -> float:
    """Fastest of ``repeats`` plain compiled BFS passes over the whole CSR (the yardstick)."""
    from cascade import _core

    mark = np.zeros(compiled.n_nodes, np.uint8)
    queue = np.zeros(compiled.n_nodes, compiled.index_dtype)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        _core.plain_bfs(compiled.adj_ptr, compiled.adj_nbr, mark, queue)
        best = min(best, time.perf_counter() - t)
    return best


def time_cascade_whole(compiled) -> tuple[float, int, int]:
    """:func:`time_cascade` with the whole-layer kernel of v1 (no local re-checks)."""
    from cascade import _core

    old = _core.LOCAL_MIN_NODES
    try:
        _core.LOCAL_MIN_NODES = 10**12
        return time_cascade(compiled)
    finally:
        _core.LOCAL_MIN_NODES = old


def time_sweep(compiled, sample: int | None, chunks: int = 4) -> tuple[float, float, int, float, float, float, dict]:
    """Time of ``core_sweep`` over all nodes, or over a seeded sample scaled up.

    Returns
    -------
    seconds : float
        Estimated time of the full sweep over every node.
    measured : float
        Seconds actually measured.
    elements : int
        Nodes swept.
    spread : float
        Relative standard deviation of the per-element time between ``chunks`` chunks.
    per_element : float
        Seconds inside the kernel per element.
    setup : float
        The call's set-up: its wall time outside the kernel calls (renumbering included).
    stats : dict
        ``core_sweep``'s ``stats`` (``renumbered``, ``order_s``, ...).
    """
    from cascade.criticality import core_sweep

    n = compiled.n_nodes
    if sample is None or sample >= n:
        el = np.arange(n)
    else:
        el = np.sort(np.random.default_rng(REMOVAL_SEED).choice(n, size=sample, replace=False))
    el = el.astype(compiled.index_dtype)
    # One call over the whole sample, in ``chunks`` kernel calls.  The sample stands for a sweep
    # over every node, which runs on the renumbered layout from criticality.RENUMBER_MIN_NODES
    # nodes on whatever its share: so the share threshold is lifted here.
    from cascade import criticality

    size = -(-len(el) // chunks)
    stats = {}
    old_share = criticality.RENUMBER_MIN_SHARE
    criticality.RENUMBER_MIN_SHARE = 0.0
    try:
        t = time.perf_counter()
        core_sweep(compiled, el, np.full(len(el), -1, compiled.index_dtype), threads=1,
                   chunk=size, stats=stats)
        measured = time.perf_counter() - t
    finally:
        criticality.RENUMBER_MIN_SHARE = old_share
    kernel, setup = stats["kernel_s"], stats["setup_s"]
    sizes = [min(size, len(el) - lo) for lo in range(0, len(el), size)]
    spread_of = np.asarray(stats["kernel_call_s"]) / np.asarray(sizes)   # one thread: in order
    spread = float(spread_of.std() / spread_of.mean()) if len(spread_of) > 1 else 0.0
    each = kernel / len(el)
    seconds = measured if len(el) == n else setup + each * n
    return seconds, measured, len(el), spread, each, setup, stats


def fit_exponent(sizes, seconds) -> tuple[float, float]:
    """Least-squares fit of log t = log a + b log N; returns (b, a)."""
    b, log_a = np.polyfit(np.log(np.asarray(sizes, float)), np.log(np.asarray(seconds, float)), 1)
    return float(b), float(np.exp(log_a))


def plot(rows: list[dict], fits: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for (kernel, system), fit in fits.items():
        pts = [r for r in rows if r["kernel"] == kernel and r["system"] == system]
        xs = np.array([r["nodes"] for r in pts], float)
        ys = np.array([r["seconds"] for r in pts])
        line, = ax.plot(xs, ys, marker="o", label=f"{kernel}, {system}: N^{fit['exponent']:.2f}")
        ax.plot(xs, fit["a"] * xs ** fit["exponent"], color=line.get_color(), linestyle=":")
        for r in pts:
            if r["scale"] > 1:
                ax.annotate("sampled", (r["nodes"], r["seconds"]), fontsize=7,
                            textcoords="offset points", xytext=(4, -10))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("nodes N (ER: two coupled layers, k = 4; lifelines: five layers)")
    ax.set_ylabel("seconds (core, one thread)")
    ax.set_title("Scaling of the cascade core")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Scaling of the cascade and the N-1 sweep")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES),
                        help="total node counts (two layers of N/2)")
    parser.add_argument("--full-sweep-max", type=int, default=10_000,
                        help="sweep every node up to this N; sample above it")
    parser.add_argument("--sweep-budget", type=float, default=20.0,
                        help="about how many seconds a sampled sweep may take per system")
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--systems", nargs="+", choices=["giant", "source", "lifelines"],
                        default=["giant", "source", "lifelines"], help="which systems to run")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    rows = []
    per_element = {}            # last measured seconds per element, to size the next sample
    print(f"{'kernel':<8} {'system':<9} {'nodes':>9} {'seconds':>10} {'measured':>9} "
          f"{'elements':>9} {'scale':>8} {'rounds':>6}", flush=True)
    for n_total in sorted(args.sizes):
        compiled, compile_s = systems(n_total, args.systems)
        for system, c in compiled.items():
            jobs = [("cascade",)] + ([] if args.no_sweep else [("sweep",)])
            for (kernel,) in jobs:
                if kernel == "cascade":
                    seconds, repeats, rounds = time_cascade(c)
                    bfs = time_bfs(c)
                    whole, _, _ = time_cascade_whole(c)
                    row = {"measured": seconds, "elements": None, "repeats": repeats, "scale": 1.0,
                           "spread": None, "rounds": rounds, "bfs_s": bfs, "whole_layer_s": whole,
                           "bfs_passes": seconds / bfs, "whole_layer_bfs_passes": whole / bfs}
                    print(f"         {system:<9} {c.n_nodes:>9} one plain BFS {bfs:.4g} s: cascade = "
                          f"{seconds / bfs:.1f} BFS passes, whole-layer kernel = {whole / bfs:.1f}",
                          flush=True)
                else:
                    sample = None
                    if c.n_nodes > args.full_sweep_max:
                        guess = per_element.get(system, 1e-6) * (c.n_nodes / per_element.get(
                            (system, "n"), c.n_nodes)) ** 1.0
                        sample = int(np.clip(args.sweep_budget / max(guess, 1e-9), 20, c.n_nodes))
                    seconds, measured, k, spread, each, setup, st = time_sweep(c, sample)
                    per_element[system] = each
                    per_element[(system, "n")] = c.n_nodes
                    row = {"measured": measured, "elements": k, "repeats": 1,
                           "scale": c.n_nodes / k, "spread": spread, "setup_s": setup,
                           "per_element_s": each, "per_element_method": "kernel",
                           "renumbered": bool(st.get("renumbered")), "order_s": st.get("order_s"),
                           "per_element_cpu_s": st["kernel_cpu_s"] / k}
                    print(f"         {system:<9} {c.n_nodes:>9} sweep set-up {setup:.4g} s per call, "
                          f"{each * 1e6:.3g} us per element after it "
                          f"({st['kernel_cpu_s'] / k * 1e6:.3g} us of CPU)"
                          f"{' (renumbered)' if st.get('renumbered') else ''}", flush=True)
                row.update({"kernel": kernel, "system": system, "nodes": c.n_nodes,
                            "edges": c.n_edges, "seconds": seconds})
                if kernel == "cascade" and system == "giant":
                    row["compile_s"] = compile_s
                rows.append(row)
                print(f"{kernel:<8} {system:<9} {c.n_nodes:>9} {seconds:>10.4g} {row['measured']:>9.3g} "
                      f"{row['elements'] or '':>9} {row['scale']:>8.4g} {row.get('rounds', ''):>6}",
                      flush=True)
        del compiled

    fits = {}
    for key in sorted({(r["kernel"], r["system"]) for r in rows}):
        pts = [r for r in rows if (r["kernel"], r["system"]) == key]
        if len(pts) >= 2:
            b, a = fit_exponent([r["nodes"] for r in pts], [r["seconds"] for r in pts])
            fits[key] = {"exponent": b, "a": a}
            print(f"fit {key[0]:<8} {key[1]:<9} time ~ {a:.3g} * N^{b:.3f}")
    commit = git("rev-parse", "--short=10", "HEAD") or "unknown"
    date = dt.datetime.now(dt.timezone.utc)
    result = {
        "date": date.isoformat(), "commit": commit,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "machine": {"node": platform.node(), "machine": platform.machine(),
                    "python": platform.python_version(), "cpu": platform.processor() or None,
                    "cores": os.cpu_count()},
        "command": "python benchmarks/bench_scaling.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "rows": rows,
        "fits": [{"kernel": k, "system": s, **v} for (k, s), v in fits.items()],
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"scaling-{date:%Y-%m-%d}-{commit}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    if fits:
        plot(rows, fits, args.out_dir / "report" / "scaling.png")
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
