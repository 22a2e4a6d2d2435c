"""From files to ranking: ``cascade critical`` on the 10^6-node generated lifelines read from
CSV (``make bench-files``; issue 15, item 3).

A script, not a pytest-benchmark module (excluded from ``pytest benchmarks``).  It writes
:func:`cascade.criticality.synthetic_lifelines` (N nodes, seed 0: the ``lifelines`` system of
``bench_scaling.py``) as a CSV system directory once (``--dir``, kept between runs), and runs
the command a user runs, as a real process, in three states:

* ``cold``: ``cascade --no-cache critical DIR --no-compare`` (read, validate, compile, sweep,
  rank, print the table);
* ``first``: the same with the cache on and no entry yet (it also writes ``.cascade-cache/``);
* ``cached``: again, reading the compiled system from the cache;
* ``baseline`` (with ``--baseline PYTHONPATH``): the same command with an older tree's package,
  for ratios measured under the same load; its cache entry is removed before it, so it is a
  ``first`` run of the older code (compare it with ``first``).

Each state runs ``--repeats`` times; it reports the wall time, the CPU time (user + sys) and
the peak resident memory (``ru_maxrss`` of that process, from ``os.wait4``), min and median.
The machine is shared: compare CPU times and runs of the same session, not absolute walls.

Writes ``benchmarks/results/files-<date>-<commit>.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from check import RESULTS, git  # noqa: E402

CASCADE = Path(sys.executable).parent / "cascade"
TARGETS = {"cold_wall_s": 6.0, "cold_peak_mb": 700.0, "cached_wall_s": 3.0}


def make_system(path: Path, n: int) -> None:
    """Write the system once, in a child process: Linux carries a process's peak RSS through
    fork and exec into its children's ``ru_maxrss``, so a parent grown by building 10^6 nodes
    would raise every measured peak to its own."""
    if (path / "nodes.csv").exists():
        return
    code = ("import sys; from pathlib import Path; "
            "from cascade.criticality import synthetic_lifelines; from cascade.io import write_system; "
            "write_system(synthetic_lifelines(int(sys.argv[1]), seed=0), Path(sys.argv[2]))")
    subprocess.run([sys.executable, "-c", code, str(n), str(path)], check=True)


def measure(args: list[str], pythonpath: str | None = None) -> dict:
    """One run of ``cascade ARGS``: wall and CPU seconds, peak RSS in MB, first output line
    (with ``pythonpath``, the ``cascade`` package found there: a baseline tree)."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    start = time.perf_counter()
    proc = subprocess.Popen([str(CASCADE), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    # os.wait4 gives this child's own rusage (getrusage(RUSAGE_CHILDREN) would mix runs).
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"cascade {' '.join(args)} failed: {err.decode()[-500:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_mb": usage.ru_maxrss / 1024, "first_line": out.decode().splitlines()[0]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="cascade critical from CSV files at 10^6 nodes")
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/cascade-bench-files"),
                        help="where the generated system is written (kept between runs)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--baseline", metavar="PYTHONPATH", default=None,
                        help="also run a 'baseline' state with the cascade package of another tree "
                             "(e.g. an unpacked `git archive` of an older commit with its built modules)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    root = args.dir / f"lifelines{args.nodes}"
    make_system(root, args.nodes)
    command = ["critical", str(root), "--no-compare", "--threads", str(args.threads)]
    states = {"cold": ["--no-cache", *command], "first": command, "cached": command}
    if args.baseline:
        states = {"baseline": command, **states}
    runs: dict[str, list[dict]] = {name: [] for name in states}
    for _ in range(args.repeats):   # interleaved, so that load changes hit every state alike
        for name, cmd in states.items():
            if name in ("first", "baseline"):   # both read, compile and write the cache
                shutil.rmtree(root / ".cascade-cache", ignore_errors=True)
            runs[name].append(measure(cmd, args.baseline if name == "baseline" else None))
            r = runs[name][-1]
            print(f"{name:<7} wall {r['wall_s']:6.2f} s  cpu {r['cpu_s']:6.2f} s  "
                  f"peak {r['peak_mb']:6.0f} MB", flush=True)
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    summary = {}
    for name, rs in runs.items():
        for key in ("wall_s", "cpu_s", "peak_mb"):
            values = sorted(r[key] for r in rs)
            summary[f"{name}_{key}_min"] = values[0]
            summary[f"{name}_{key}_median"] = values[len(values) // 2]
        print(f"{name:<7} min wall {summary[f'{name}_wall_s_min']:.2f} s, cpu "
              f"{summary[f'{name}_cpu_s_min']:.2f} s, peak {summary[f'{name}_peak_mb_min']:.0f} MB")
    commit = git("rev-parse", "--short=10", "HEAD") or "unknown"
    date = dt.datetime.now(dt.timezone.utc)
    result = {"date": date.isoformat(), "commit": commit,
              "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
              "machine": {"node": platform.node(), "machine": platform.machine(),
                          "python": platform.python_version(), "cores": os.cpu_count(),
                          "loadavg_after": load},
              "command": "python benchmarks/bench_files.py " + " ".join(argv or sys.argv[1:]),
              "cascade_command": "cascade [--no-cache] " + " ".join(command),
              "nodes": args.nodes, "targets": TARGETS, "summary": summary, "runs": runs}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"files-{date:%Y-%m-%d}-{commit}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
