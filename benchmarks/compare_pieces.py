"""Time and peak RSS of each piece of ``cascade critical``'s comparison, in one process
(README, "The comparison on large systems"):

    python benchmarks/compare_pieces.py DIR [csv]

DIR is a system directory, e.g. ``synthetic_lifelines(10**6, seed=0)`` written by
``cascade.io.write_system``; with ``csv``, also the whole ranking as CSV text.  Each line: the
piece's wall seconds, the process's peak RSS after it (and its growth) and the RSS now.  A
script, not a pytest-benchmark module.
"""
import resource
import sys
import time
from pathlib import Path

import numpy as np

from cascade import criticality as cr
from cascade.cache import load
from cascade.commands import release_memory
from cascade.commands.critical import csv_chunks
from cascade.light import centred_ranks


def rss() -> float:
    """The process's peak RSS so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cur() -> float:
    """The process's RSS now, MB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def step(name, fn):
    r0 = rss()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    print(f"{name:<30} {dt:7.2f} s  peak {rss():6.0f} MB (+{rss() - r0:4.0f}), now {cur():6.0f} MB",
          flush=True)
    return out


root = Path(sys.argv[1])
system, c = step("load (cache)", lambda: load(root))
release_memory()
r = step("sweep", lambda: cr.sweep_ranking(system, "nodes", threads=2, compiled=c))
release_memory()
step("table head 20 (sort)", lambda: r.head(20))
deg = step("degree", lambda: np.bincount(np.asarray(c.edge_src, np.int64), minlength=c.n_nodes)
           + np.bincount(np.asarray(c.edge_dst, np.int64), minlength=c.n_nodes))
step(f"betweenness ({cr.BETWEENNESS_SOURCES} sampled)", lambda: cr._betweenness_arrays(c, True, False))
sel = np.arange(len(r))
step("cascade top 20 (partition)", lambda: r.order(20, among=sel))
step("dense rank", lambda: cr._dense_rank(r.score, r.nodes_lost.astype(float)))
step("spearman (rank both)", lambda: (centred_ranks(r.score), centred_ranks(deg.astype(float))))
step("degree top 20 (ids of ties)", lambda: cr._top_by(deg.astype(float), lambda p: r._ids(p)[0], 20))
step("compare_rankings (all)", lambda: cr.compare_rankings(c, r, top=20))
step("blind spots: alone sweep only",
     lambda: cr.core_sweep(c.without_dependencies(), r.el_node, r.el_edge, threads=2))
step("blind_spots (all)", lambda: cr.blind_spots(system, r, top=20, threads=2))
if len(sys.argv) > 2:
    step("csv --top 0 text (chunks)", lambda: sum(len(p) for p in csv_chunks(r, False)))
