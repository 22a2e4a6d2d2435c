"""The N-1 sweep of ``cascade critical`` on threads and on Dask, one run, medians of repeats.

    python benchmarks/critical_speed.py [NODES] [REPEATS]

:func:`cascade.criticality.core_sweep` over every node of the seeded five-lifeline system of
:func:`cascade.criticality.synthetic_lifelines` (default 10^6 nodes): 1 thread, 2 threads,
and ``--workers 2`` (a real local scheduler with 2 single-threaded worker processes,
:class:`cascade.cluster.SweepCluster`, started outside the timing).  ``workers2`` is what
``--workers 2`` runs: the workers read the plan this process built (renumbered layout
included) from shared memory and write their rows there (``criticality.SHARED_LOCAL``).
``recipe2`` is the same cluster on the path of a remote ``--scheduler``: the first sweep sends
the system to the workers' stores, the next ones find it there (the table gives both the first
run and the median of the others), each worker builds the start state, rows come back through
Dask.  Each repeat runs every executor once, in turn, so
that the machine's load hits them alike; every answer is checked against the first one.
Besides the wall time, the CPU seconds each sweep cost in this process (with the local
scheduler, the client and, on threads, the sweep itself) and in the two worker processes
(idle on threads: their heartbeats); unlike wall times, these hardly depend on the load.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np


def main(nodes: int = 10**6, repeats: int = 3) -> None:
    from cascade import compile_system
    from cascade.cluster import SweepCluster
    from cascade import criticality
    from cascade.criticality import core_sweep, element_indices, synthetic_lifelines

    c = compile_system(synthetic_lifelines(nodes, seed=0))
    el_node, el_edge = element_indices(c)
    print(f"{c.n_nodes:,} nodes, {c.n_edges:,} edges, sweep of {len(el_node):,} nodes; "
          f"load average at the start {os.getloadavg()[0]:.1f}")
    with SweepCluster(workers=2) as cluster:
        runs = {"threads1": dict(threads=1), "threads2": dict(threads=2),
                "workers2": dict(cluster=cluster), "recipe2": dict(cluster=cluster)}
        seconds = {k: [] for k in runs}
        cpu = {k: [] for k in runs}
        want = None
        for _ in range(repeats + 1):   # the first round: recipe2 sends the system
            for name, kw in runs.items():
                w0 = cluster.client.run(time.process_time)
                p0 = time.process_time()
                criticality.SHARED_LOCAL = name != "recipe2"
                t = time.perf_counter()
                got = core_sweep(c, el_node, el_edge, **kw)
                seconds[name].append(time.perf_counter() - t)
                p1 = time.process_time()
                w1 = cluster.client.run(time.process_time)
                cpu[name].append((p1 - p0, sum(w1[w] - w0[w] for w in w0 if w in w1)))
                want = got if want is None else want
                assert all(np.array_equal(a, b) for a, b in zip(got, want)), name
    med = {k: statistics.median(v[1:]) for k, v in seconds.items()}
    print(f"seconds per sweep, median of {repeats} (after a first round), load average at the end "
          f"{os.getloadavg()[0]:.1f}")
    for name in runs:
        print(f"  {name:9s} {med[name]:7.2f} s  x{med['threads1'] / med[name]:.2f} of 1 thread   "
              f"(first {seconds[name][0]:.2f} s; runs: {', '.join(f'{v:.2f}' for v in seconds[name][1:])})")
    print("CPU seconds per sweep (median after the first round): this process + the 2 workers")
    for name in runs:
        here = statistics.median(p for p, _ in cpu[name][1:])
        there = statistics.median(w for _, w in cpu[name][1:])
        print(f"  {name:9s} {here:5.2f} + {there:5.2f} = {here + there:5.2f} s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
