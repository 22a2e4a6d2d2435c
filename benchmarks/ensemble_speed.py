"""Ensemble speed on the demo town, executors interleaved, medians of repeats (README figures).

    python benchmarks/ensemble_speed.py [SAMPLES] [REPEATS]

For the shipped earthquake scenario (correlated residuals) and the same with
``correlation = "none"``: samples/s of the compiled path on 1 thread (``core``), the numpy path
it replaced on 1 thread (``python``), 2 threads, ``--workers 2`` in steady state
(``workers2``: a run on the running local cluster of ``cascade.ensemble._local_cluster``, the
system and scenario already in the workers' stores, the rate of the last run remembered;
each run connects a client, as a command on ``--scheduler`` does), the same on a client held
open over the runs (``workers2open``: ``run_ensemble(cluster=SweepCluster(...))``, a library
loop) and from cold (``workers2cold``: ``run_ensemble(workers=2)``, what ``cascade scenario --workers 2``
does: start the cluster, send, calibrate, run, stop it).  Start-up is printed apart: the
cluster's start and the first run on it (sending the objects, the workers' first tasks).
Each repeat runs every executor once, in turn, so that the machine's load hits them alike;
the table gives the median over repeats and the ratios of the medians.  Every run is checked
to give the losses of the first ``core`` run.  The load average is printed at the start and
at the end (the machine is shared).  So are the CPU seconds of each run: this process (client,
scheduler, nannies), the running cluster's workers (``/proc``) and the workers of a cold
cluster (reaped children): on a loaded machine the wall-clock ratios say little, while the
CPU a run costs against one thread's says how much a second core could give.
"""
from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def independent_copy(quake: Path, path: Path) -> None:
    """Write the earthquake scenario at ``quake`` to ``path`` with ``correlation = "none"``."""
    path.write_text(quake.read_text().replace('system = "../networks/demo_town"', "")
                    .replace('mechanism = "unspecified"',
                             'mechanism = "unspecified"\ncorrelation = "none"'))


def cpu_seconds(pids=()) -> float:
    """CPU seconds (user + system) of this process, its reaped children and ``pids``."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        use = resource.getrusage(who)
        total += use.ru_utime + use.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main(samples: int = 2000, repeats: int = 3) -> None:
    import distributed

    from cascade import cluster as sweep_cluster
    from cascade import compile_system, ensemble, load_scenario, read_system, run_ensemble

    system = read_system(ROOT / "networks" / "demo_town")
    compiled = compile_system(system)
    quake = ROOT / "scenarios" / "earthquake_m62.toml"
    tmp = Path(tempfile.mkdtemp())
    independent_copy(quake, tmp / "none.toml")
    print(f"load average at the start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    t = time.perf_counter()
    cluster = ensemble._local_cluster(distributed, 2)
    print(f"local cluster of 2 workers started in {time.perf_counter() - t:.2f} s "
          f"(start method {ensemble.LOCAL_START_METHOD or 'dask default'})")
    held = sweep_cluster.SweepCluster(scheduler=cluster.scheduler_address)
    pids = sorted(held.client.run(os.getpid).values())
    try:
        for label, path in (("correlated", quake), ("independent", tmp / "none.toml")):
            scenario = load_scenario(path)
            scenario.prepare(system, compiled)
            expected = run_ensemble(system, scenario, samples, threads=1, compiled=compiled).loss
            t = time.perf_counter()
            first = run_ensemble(system, scenario, samples, compiled=compiled,
                                 scheduler=cluster.scheduler_address)
            print(f"{label}: first run on the cluster (sends system and scenario, calibrates) "
                  f"{time.perf_counter() - t:.2f} s")
            assert np.array_equal(first.loss, expected)
            runs = {
                "core": dict(threads=1),
                "python": dict(threads=1),
                "threads2": dict(threads=2),
                "workers2": dict(scheduler=cluster.scheduler_address),
                "workers2open": dict(cluster=held),
                "workers2cold": dict(workers=2),
            }
            speed = {k: [] for k in runs}
            cpu = {k: [] for k in runs}
            for _ in range(repeats):
                for name, kw in runs.items():
                    ensemble.COMPILED_SAMPLING = name != "python"
                    if name == "workers2cold":   # as a new command: no rate remembered
                        sweep_cluster._RATES.clear()
                    try:
                        c = cpu_seconds(pids)
                        t = time.perf_counter()
                        result = run_ensemble(system, scenario, samples, compiled=compiled, **kw)
                        speed[name].append(samples / (time.perf_counter() - t))
                        cpu[name].append(cpu_seconds(pids) - c)
                    finally:
                        ensemble.COMPILED_SAMPLING = True
                    assert np.array_equal(result.loss, expected), name
            med = {k: statistics.median(v) for k, v in speed.items()}
            print(f"{label}: {samples} samples, median of {repeats}")
            for name in runs:
                print(f"  {name:12s} {med[name]:8.0f} samples/s  x{med[name] / med['core']:.2f} of core"
                      f"   (runs: {', '.join(f'{v:.0f}' for v in speed[name])})")
            mcpu = {k: statistics.median(v) for k, v in cpu.items()}
            print(f"  CPU seconds per run (all processes), median of {repeats}")
            for name in runs:
                print(f"  {name:12s} {mcpu[name]:8.2f} s  x{mcpu[name] / mcpu['core']:.2f} of core"
                      f"   (runs: {', '.join(f'{v:.2f}' for v in cpu[name])})")
    finally:
        held.close()
        ensemble.close_local_cluster(cluster)
        print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
