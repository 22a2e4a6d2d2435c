"""Speed ratios of the kernels against their baselines: extract, save, check against floors.

Ratios, not absolute times, decide (issue 8): on a shared, noisy CI machine a kernel and its
baselines run in the same pytest session, on the same system, one after the other, so a slow
machine slows both and their ratio survives.  Within each pytest-benchmark group
``"<kernel>-<size>"`` the ratio of a baseline is

    ratio = (baseline min time x baseline scale) / (core min time x core scale)

The minimum over rounds is used because noise from other jobs only ever adds time: the fastest
round is the estimate that noise moves least.  ``scale`` (``extra_info["scale"]``, default 1) turns
a time measured on a sample into the time of the full job.

Usage
-----
``python benchmarks/check.py check [--json RUN.json] [--floors benchmarks/floors.toml]``
    Without ``--json``: run every ``benchmarks/bench_*.py`` with ``CASCADE_BENCH_QUICK=1`` (smallest
    size only), then compare each kernel's ratios with its floors.  Exit 1, with one line per
    problem, when a ratio is below its floor, a kernel has no ratio in the run, a bench file named
    in the floors is missing, or pytest reports an error, a failure or a skip.
``python benchmarks/check.py save RAW.json [--out-dir benchmarks/results]``
    Turn a pytest-benchmark ``--benchmark-json`` file into ``<out-dir>/<date>-<commit>.json`` with
    machine, commit, ratios and times (the history that ``benchmarks/report.py`` plots).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FLOORS = HERE / "floors.toml"
RESULTS = HERE / "results"
NOT_COLLECTED = {"bench_scaling.py", "bench_files.py"}   # scripts (make bench-scaling, bench-files), not pytest modules


# --------------------------------------------------------------------------- extraction
def times(raw: dict) -> list[dict]:
    """One row per measured benchmark of a pytest-benchmark JSON document.

    Returns
    -------
    list of dict
        Keys ``name``, ``group``, ``kernel``, ``impl``, ``scale``, ``min``, ``median``, ``mean``,
        ``stddev`` (seconds per call, as measured, not scaled), ``rounds``.
    """
    rows = []
    for b in raw.get("benchmarks", []):
        info = b.get("extra_info", {})
        stats = b["stats"]
        rows.append({
            "name": b["name"], "group": b.get("group") or "",
            "kernel": info.get("kernel", ""), "impl": info.get("impl", ""),
            "scale": float(info.get("scale", 1.0)),
            "min": stats["min"], "median": stats["median"], "mean": stats["mean"],
            "stddev": stats["stddev"], "rounds": stats["rounds"],
        })
    return rows


def ratios(raw: dict) -> list[dict]:
    """Ratios baseline / core within each group of a pytest-benchmark JSON document.

    Returns
    -------
    list of dict
        Keys ``kernel``, ``group``, ``size`` (the group without ``"<kernel>-"``), ``baseline``
        (the impl compared with ``core``), ``ratio``, ``core_s`` and ``baseline_s`` (scaled
        minimum seconds per full job); sorted by kernel, group, baseline.  Groups without a
        ``core`` entry give no ratio.
    """
    by_group: dict[str, list[dict]] = {}
    for row in times(raw):
        by_group.setdefault(row["group"], []).append(row)
    out = []
    for group, rows in by_group.items():
        cores = [r for r in rows if r["impl"] == "core"]
        if len(cores) != 1:
            continue
        core = cores[0]
        kernel = core["kernel"] or group.split("-")[0]
        core_s = core["min"] * core["scale"]
        size = group[len(kernel) + 1:] if group.startswith(kernel + "-") else group
        for r in rows:
            if r["impl"] in ("core", ""):
                continue
            base_s = r["min"] * r["scale"]
            out.append({"kernel": kernel, "group": group, "size": size, "baseline": r["impl"],
                        "ratio": base_s / core_s, "core_s": core_s, "baseline_s": base_s})
    return sorted(out, key=lambda r: (r["kernel"], r["group"], r["baseline"]))


# --------------------------------------------------------------------------- floors
def load_floors(path: Path = FLOORS) -> dict[str, dict]:
    """``{kernel: {"file", "path", "group", "floors": {baseline: float}}}`` from a TOML file.

    Each table ``[<kernel>]`` holds ``file`` (the bench file, relative to the floors file's
    folder; ``path`` is it resolved), ``group`` (the group the floors were measured on, normally
    the quick run's smallest size; without it they apply to every group of the kernel), and one
    number per baseline impl: the smallest acceptable ratio baseline / core.
    """
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    out = {}
    for kernel, table in doc.items():
        if not isinstance(table, dict):
            raise ValueError(f"{path}: '{kernel}' must be a table [{kernel}]")
        floors = {k: float(v) for k, v in table.items() if k not in ("file", "group")}
        name = table.get("file")
        out[kernel] = {"file": name, "path": Path(path).parent / name if name else None,
                       "group": table.get("group"), "floors": floors}
    return out


def check_ratios(rows: list[dict], floors: dict[str, dict]) -> list[str]:
    """Problems of a run's ratios against the floors, one message per line (empty: all good).

    A kernel's floor applies to its ``group`` (or to every group of the kernel when none is
    given).  A floor without any ratio in the run is a problem: the benchmark is missing, was
    skipped or errored.
    """
    problems = []
    for kernel, spec in floors.items():
        if spec.get("path") and not spec["path"].exists():
            problems.append(f"kernel '{kernel}': {spec['file']} is missing")
        for baseline, floor in spec["floors"].items():
            found = [r for r in rows if r["kernel"] == kernel and r["baseline"] == baseline
                     and spec.get("group") in (None, r["group"])]
            if not found:
                where = f" in group {spec['group']}" if spec.get("group") else ""
                problems.append(f"kernel '{kernel}': no {baseline}/core ratio{where} in this run "
                                f"(benchmark missing, skipped or errored); floor {floor:g}x")
            for r in found:
                if r["ratio"] < floor:
                    problems.append(
                        f"kernel '{kernel}' ({r['group']}): core is {r['ratio']:.1f}x faster than "
                        f"{baseline}, below the floor {floor:g}x "
                        f"(core {r['core_s'] * 1e3:.3g} ms, {baseline} {r['baseline_s'] * 1e3:.3g} ms)")
    return problems


def format_ratios(rows: list[dict], floors: dict[str, dict]) -> str:
    """A plain-text table of ratios with their floors."""
    lines = [f"{'group':<28} {'baseline':<12} {'ratio':>10} {'floor':>8} {'core ms':>10} {'base ms':>10}"]
    for r in rows:
        floor = floor_of(floors, r)
        lines.append(f"{r['group']:<28} {r['baseline']:<12} {r['ratio']:>9.1f}x "
                     f"{'-' if floor is None else f'{floor:g}x':>8} {r['core_s'] * 1e3:>10.4g} "
                     f"{r['baseline_s'] * 1e3:>10.4g}")
    return "\n".join(lines)


def floor_of(floors: dict[str, dict], row: dict) -> float | None:
    """The floor that applies to a ratio row, or None."""
    spec = floors.get(row["kernel"])
    if not spec or spec.get("group") not in (None, row["group"]):
        return None
    return spec["floors"].get(row["baseline"])


# --------------------------------------------------------------------------- running pytest
def run_quick(bench_dir: Path = HERE, extra_args=()) -> tuple[dict | None, list[str]]:
    """Run every bench file in quick mode; return (pytest-benchmark JSON or None, problems).

    Errors, failures and skips reported by pytest (read from its JUnit XML) are problems, and so
    is a bench directory without bench files.
    """
    files = sorted(f for f in bench_dir.glob("bench_*.py") if f.name not in NOT_COLLECTED)
    if not files:
        return None, [f"no benchmarks/bench_*.py files in {bench_dir}"]
    with tempfile.TemporaryDirectory() as tmp:
        json_path, xml_path = Path(tmp) / "run.json", Path(tmp) / "junit.xml"
        env = dict(os.environ, CASCADE_BENCH_QUICK="1")
        cmd = [sys.executable, "-m", "pytest", *map(str, files), "-q", "-p", "no:cacheprovider",
               "--continue-on-collection-errors",
               f"--benchmark-json={json_path}", f"--junitxml={xml_path}",
               "--benchmark-columns=min,median,rounds", *extra_args]
        print("+", " ".join(cmd), flush=True)
        status = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        problems = junit_problems(xml_path) if xml_path.exists() else []
        if status != 0:
            problems.append(f"pytest exited with status {status} (a benchmark errored or failed)")
        raw = json.loads(json_path.read_text()) if json_path.exists() else None
    return raw, problems


def junit_problems(xml_path: Path) -> list[str]:
    """One line per errored, failed or skipped test case of a JUnit XML report."""
    problems = []
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        for tag in ("error", "failure", "skipped"):
            node = case.find(tag)
            if node is not None:
                what = (node.get("message") or "").splitlines()[:1]
                problems.append(f"{case.get('classname')}.{case.get('name')}: {tag}"
                                + (f": {what[0]}" if what else ""))
    return problems


# --------------------------------------------------------------------------- saving
def git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def summarize(raw: dict, commit: str | None = None, date: str | None = None) -> dict:
    """The saved form of a run: date, commit, machine, ratios and times.

    ``commit`` and ``date`` default to those pytest-benchmark recorded at the run (its
    ``commit_info``, ``datetime``), else to the checkout's HEAD and now.  ``dirty``: the tree had
    uncommitted changes to tracked files (other people's work in progress included).
    """
    machine = raw.get("machine_info", {})
    cpu = machine.get("cpu", {})
    info = raw.get("commit_info") or {}
    if commit is None and info.get("id"):
        commit, dirty = info["id"][:10], bool(info.get("dirty"))
    elif commit is None:
        commit = git("rev-parse", "--short=10", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    else:
        dirty = False
    return {
        "date": date or raw.get("datetime") or dt.datetime.now(dt.timezone.utc).isoformat(),
        "commit": commit,
        "dirty": dirty,
        "machine": {"node": machine.get("node"), "system": machine.get("system"),
                    "release": machine.get("release"), "machine": machine.get("machine"),
                    "python": machine.get("python_version"),
                    "cpu": cpu.get("brand_raw"), "cores": cpu.get("count") or os.cpu_count()},
        "ratios": ratios(raw),
        "times": times(raw),
    }


def save(raw_path: Path, out_dir: Path = RESULTS) -> Path:
    """Write ``<out_dir>/<YYYY-MM-DD>-<commit>.json`` from a pytest-benchmark JSON file."""
    run = summarize(json.loads(Path(raw_path).read_text()))
    day = run["date"][:10]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{day}-{run['commit'] or 'unknown'}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(run, indent=1) + "\n")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- command line
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    c = sub.add_parser("check", help="compare ratios with the floors (runs the quick suite)")
    c.add_argument("--json", type=Path, help="a pytest-benchmark JSON to check instead of running")
    c.add_argument("--floors", type=Path, default=FLOORS)
    s = sub.add_parser("save", help="save a pytest-benchmark JSON as a results file")
    s.add_argument("raw", type=Path)
    s.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.command == "save":
        path = save(args.raw, args.out_dir)
        run = json.loads(path.read_text())
        print(format_ratios(run["ratios"], load_floors() if FLOORS.exists() else {}))
        print(f"saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        return 0
    if args.command != "check":
        parser.print_help()
        return 2
    floors = load_floors(args.floors)
    if args.json:
        raw, problems = json.loads(args.json.read_text()), []
    else:
        raw, problems = run_quick()
    rows = ratios(raw) if raw else []
    if rows:
        print(format_ratios(rows, floors))
    problems += check_ratios(rows, floors)
    for kernel in sorted({r["kernel"] for r in rows} - set(floors)):
        print(f"note: kernel '{kernel}' has no floor in {args.floors.name}")
    measured = {t["kernel"] or t["group"].split("-")[0] for t in times(raw)} if raw else set()
    for kernel in sorted(measured - {r["kernel"] for r in rows}):
        print(f"note: kernel '{kernel}' has no baseline beside its core in this run: no ratio to check")
    if problems:
        print(f"bench-check FAILED ({len(problems)} problem(s)):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print("bench-check passed: every kernel is at or above its floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
