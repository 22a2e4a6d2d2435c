"""The N-1 sweep of ``cascade critical`` on threads and on Dask, one run, medians of repeats.

    python benchmarks/critical_speed.py [NODES] [REPEATS]

:func:`cascade.criticality.core_sweep` over every node of the seeded five-lifeline system of
:func:`cascade.criticality.synthetic_lifelines` (default 10^6 nodes): 1 thread, 2 threads,
and ``--workers 2`` (a real local scheduler with 2 single-threaded worker processes,
:class:`cascade.cluster.SweepCluster`, started outside the timing; the first Dask sweep sends
the system to the workers' stores, the next ones find it there, so the table gives both the
first run and the median of the others).  Each repeat runs every executor once, in turn, so
that the machine's load hits them alike; every answer is checked against the first one.
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
    from cascade.criticality import core_sweep, element_indices, synthetic_lifelines

    c = compile_system(synthetic_lifelines(nodes, seed=0))
    el_node, el_edge = element_indices(c)
    print(f"{c.n_nodes:,} nodes, {c.n_edges:,} edges, sweep of {len(el_node):,} nodes; "
          f"load average at the start {os.getloadavg()[0]:.1f}")
    with SweepCluster(workers=2) as cluster:
        runs = {"threads1": dict(threads=1), "threads2": dict(threads=2), "workers2": dict(cluster=cluster)}
        seconds = {k: [] for k in runs}
        want = None
        for _ in range(repeats + 1):   # the first round: the Dask run sends the system
            for name, kw in runs.items():
                t = time.perf_counter()
                got = core_sweep(c, el_node, el_edge, **kw)
                seconds[name].append(time.perf_counter() - t)
                want = got if want is None else want
                assert all(np.array_equal(a, b) for a, b in zip(got, want)), name
    med = {k: statistics.median(v[1:]) for k, v in seconds.items()}
    print(f"seconds per sweep, median of {repeats} (after a first round), load average at the end "
          f"{os.getloadavg()[0]:.1f}")
    for name in runs:
        print(f"  {name:9s} {med[name]:7.2f} s  x{med['threads1'] / med[name]:.2f} of 1 thread   "
              f"(first {seconds[name][0]:.2f} s; runs: {', '.join(f'{v:.2f}' for v in seconds[name][1:])})")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
