"""CPU an idle local Dask cluster of ``--workers`` costs, per thread (README, *Dask speed*).

    python benchmarks/dask_idle.py [SECONDS] [REPEATS]

Starts the local cluster of ``cascade.ensemble._local_cluster`` (2 workers) with its
``QUIET_CONFIG`` and with Dask's defaults instead (``QUIET_CONFIG`` emptied), alternately, and
prints the share of a core each thread used over ``SECONDS`` of doing nothing (``/proc``
thread times): the workers' event loops (``MainThread``), and in this process the cluster's
loop (scheduler and nannies) and the client's.  On 2 cores this is time taken from the tasks.
"""
from __future__ import annotations

import os
import sys
import threading
import time


def thread_seconds() -> dict:
    """CPU seconds of each thread of this process, by thread name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict = {}
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            fields = open(f"/proc/{os.getpid()}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        name = names.get(int(tid), f"thread {tid}")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def idle_share(seconds: float) -> tuple[dict, dict]:
    """(per worker, this process): {thread name: share of a core} over ``seconds`` idle."""
    import distributed

    from cascade import ensemble

    cluster = ensemble._local_cluster(distributed, 2)
    try:
        with distributed.Client(cluster, set_as_default=False) as client:
            time.sleep(1.0)   # past the start-up
            w0, p0 = client.run(thread_seconds), thread_seconds()
            time.sleep(seconds)
            w1, p1 = client.run(thread_seconds), thread_seconds()
    finally:
        ensemble.close_local_cluster(cluster)

    def share(a, b):
        return {k: (b[k] - a.get(k, 0.0)) / seconds for k in b if b[k] - a.get(k, 0.0) > 0}
    return {w: share(w0[w], w1[w]) for w in w1}, share(p0, p1)


def main(seconds: float = 4.0, repeats: int = 2) -> None:
    from cascade import ensemble

    quiet = dict(ensemble.QUIET_CONFIG)
    print(f"load average at the start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    try:
        for _ in range(repeats):
            for label, config in (("QUIET_CONFIG", quiet), ("Dask defaults", {})):
                ensemble.QUIET_CONFIG = config
                workers, parent = idle_share(seconds)
                total = sum(sum(v.values()) for v in workers.values()) + sum(parent.values())
                print(f"{label:14s} idle {seconds:g} s: {100 * total:5.1f} % of a core in all;"
                      f" workers {', '.join(f'{100 * sum(v.values()):.1f} %' for v in workers.values())};"
                      f" this process {', '.join(f'{k} {100 * v:.1f} %' for k, v in parent.items())}")
    finally:
        ensemble.QUIET_CONFIG = quiet
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main(*(float(a) for a in sys.argv[1:2]), *(int(a) for a in sys.argv[2:3]))
