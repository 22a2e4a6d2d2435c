"""Wall and CPU seconds of ``--workers 2`` ensembles against one thread (README, *Dask speed*).

    python benchmarks/ensemble_dask_cpu.py [SAMPLES] [corr|indep] [TAG]

For the demo town's earthquake (``corr``: the shipped file; ``indep``: ``correlation =
"none"``), in one process: one thread (``core``) and a cold ``workers=2`` run (cluster started
and stopped in the timing) alternated twice, then 3 runs on a client held open on a running
local cluster (``open``).  Each run prints ``wall s / CPU s``, the CPU of every process of
the run: this one (client, scheduler, nannies), its reaped children (a cold cluster's
workers) and the running cluster's workers (``/proc`` thread times).  Every run is checked to
give the losses of the first one-thread run.  To compare two versions of the code, run it
with each checkout first on ``PYTHONPATH`` (``TAG`` labels the line), alternately.
"""
from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dask_idle import thread_seconds  # noqa: E402
from ensemble_speed import ROOT, independent_copy  # noqa: E402


def own_seconds() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        use = resource.getrusage(who)
        total += use.ru_utime + use.ru_stime
    return total


def main(samples: int = 6000, kind: str = "corr", tag: str = "") -> None:
    import distributed

    from cascade import cluster as sweep_cluster
    from cascade import compile_system, ensemble, load_scenario, read_system, run_ensemble

    system = read_system(ROOT / "networks" / "demo_town")
    compiled = compile_system(system)
    path = ROOT / "scenarios" / "earthquake_m62.toml"
    if kind != "corr":
        copy = Path(tempfile.mkdtemp()) / "none.toml"
        independent_copy(path, copy)
        path = copy
    scenario = load_scenario(path)
    scenario.prepare(system, compiled)
    expected = run_ensemble(system, scenario, samples, threads=1, compiled=compiled).loss
    out: dict = {"core": [], "cold": [], "open": []}
    for _ in range(2):
        for name, kw in (("core", dict(threads=1)), ("cold", dict(workers=2))):
            sweep_cluster._RATES.clear()
            c, t = own_seconds(), time.perf_counter()
            result = run_ensemble(system, scenario, samples, compiled=compiled, **kw)
            out[name].append((time.perf_counter() - t, own_seconds() - c))
            assert np.array_equal(result.loss, expected), name
    cluster = ensemble._local_cluster(distributed, 2)
    held = sweep_cluster.SweepCluster(scheduler=cluster.scheduler_address)
    try:
        run_ensemble(system, scenario, samples // 2, compiled=compiled, cluster=held)
        for _ in range(3):
            w0, c, t = held.client.run(lambda: sum(thread_seconds().values())), own_seconds(), time.perf_counter()
            result = run_ensemble(system, scenario, samples, compiled=compiled, cluster=held)
            wall = time.perf_counter() - t
            w1 = held.client.run(lambda: sum(thread_seconds().values()))
            out["open"].append((wall, own_seconds() - c + sum(w1[k] - w0[k] for k in w1)))
            assert np.array_equal(result.loss, expected), "open"
    finally:
        held.close()
        ensemble.close_local_cluster(cluster)
    print(f"{tag} {kind} {samples} samples, load {os.getloadavg()[0]:.1f}, wall s / CPU s: "
          + "; ".join(f"{k}: " + " ".join(f"{w:.2f}/{c:.2f}" for w, c in v) for k, v in out.items()))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]), *sys.argv[2:4])
