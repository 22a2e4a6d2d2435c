"""Saved benchmark runs -> a Markdown table and one PNG per ratio over commits.

Reads every ``benchmarks/results/*.json`` written by ``benchmarks/check.py save`` (``make bench``),
orders the runs by date, and writes into the output directory

* ``ratios.md``: one row per ratio (``<kernel>-<size>``, baseline), one column per run
  (the last ``--last`` runs, date and commit), the floor from ``benchmarks/floors.toml``;
* ``<kernel>-<baseline>.png``: that kernel's ratio baseline / core over the runs, one line per
  size, log scale, the floor dashed, so that a regression shows as a drop;
* ``sweep-per-element.md`` (when ``scaling-*.json`` runs of ``make bench-scaling`` are saved):
  the N-1 sweep's set-up and cost per element at each size, one row per run and system
  (issue 15: the per-element cost flat from 10^4 to 10^6 nodes).

Usage: ``python benchmarks/report.py [--results DIR] [--out DIR] [--last N]`` (``make bench-report``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from check import FLOORS, RESULTS, floor_of, load_floors  # noqa: E402


def load_runs(results: Path) -> list[dict]:
    """Every saved run in ``results`` (``*.json``, not recursive), oldest first."""
    runs = []
    for path in sorted(results.glob("*.json")):
        run = json.loads(path.read_text())
        if "ratios" in run:
            run["_file"] = path.name
            runs.append(run)
    return sorted(runs, key=lambda r: (r.get("date", ""), r["_file"]))


def run_label(run: dict) -> str:
    """``YYYY-MM-DD commit`` (``+`` when the tree had uncommitted changes)."""
    return f"{run.get('date', '')[:10]} {run.get('commit') or '?'}{'+' if run.get('dirty') else ''}"


def table(runs: list[dict], floors: dict, last: int = 8) -> str:
    """A Markdown table: rows are ratios, columns the last ``last`` runs, then the floor."""
    shown = runs[-last:]
    keys = sorted({(r["kernel"], r["group"], r["baseline"]) for run in shown for r in run["ratios"]})
    head = ["kernel-size", "baseline / core"] + [run_label(run) for run in shown] + ["floor"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(shown) + 1)]
    for kernel, group, baseline in keys:
        cells = [group, baseline]
        for run in shown:
            found = [r["ratio"] for r in run["ratios"]
                     if (r["kernel"], r["group"], r["baseline"]) == (kernel, group, baseline)]
            cells.append(f"{found[0]:.1f}x" if found else "")
        floor = floor_of(floors, {"kernel": kernel, "group": group, "baseline": baseline})
        cells.append("" if floor is None else f"{floor:g}x")
        lines.append("| " + " | ".join(cells) + " |")
    machines = sorted({f"{r['machine'].get('cpu')}, {r['machine'].get('cores')} cores" for r in shown
                       if r.get("machine")})
    lines += ["", "Ratio = baseline time / core time (minimum over rounds, same run). "
              "Machines: " + "; ".join(machines) + "."]
    return "\n".join(lines) + "\n"


def plots(runs: list[dict], floors: dict, out: Path) -> list[Path]:
    """One PNG per (kernel, baseline): the ratio of each size over the runs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [run_label(run) for run in runs]
    pairs = sorted({(r["kernel"], r["baseline"]) for run in runs for r in run["ratios"]})
    written = []
    for kernel, baseline in pairs:
        fig, ax = plt.subplots(figsize=(max(6.5, 2.5 + 0.8 * len(runs)), 3.6), dpi=100)
        groups = sorted({r["group"] for run in runs for r in run["ratios"]
                         if (r["kernel"], r["baseline"]) == (kernel, baseline)})
        for group in groups:
            xs, ys = [], []
            for i, run in enumerate(runs):
                found = [r["ratio"] for r in run["ratios"]
                         if (r["group"], r["baseline"]) == (group, baseline)]
                if found:
                    xs.append(i)
                    ys.append(found[0])
            ax.plot(xs, ys, marker="o", label=group[len(kernel) + 1:] or group)
        spec = floors.get(kernel, {})
        floor = spec.get("floors", {}).get(baseline)
        if floor is not None:
            where = f" ({spec['group'][len(kernel) + 1:]})" if spec.get("group") else ""
            ax.axhline(floor, color="crimson", linestyle="--", linewidth=1,
                       label=f"floor{where} {floor:g}x")
        ax.set_yscale("log")
        ax.set_xticks(range(len(runs)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_xlim(-0.5, len(runs) - 0.5)
        ax.set_ylabel(f"{baseline} time / core time")
        ax.set_title(f"{kernel}: core vs {baseline} (higher is faster)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.tight_layout()
        path = out / f"{kernel}-{baseline}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def sweep_per_element(results: Path, last: int = 8) -> str | None:
    """A Markdown table of the saved scaling runs' sweep rows: per run and system, the cost per
    element and the set-up at each size.  None when no run has them."""
    runs = []
    for path in sorted(results.glob("scaling-*.json")):
        run = json.loads(path.read_text())
        rows = [r for r in run.get("rows", []) if r.get("kernel") == "sweep" and "per_element_s" in r]
        if rows:
            runs.append((run.get("date", ""), path.name, run, rows))
    if not runs:
        return None
    runs = sorted(runs)[-last:]
    sizes = sorted({r["nodes"] for *_, rows in runs for r in rows})
    head = ["run", "system"] + [f"{n:,} nodes".replace(",", " ") for n in sizes]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * len(sizes)]
    for _, _, run, rows in runs:
        for system in sorted({r["system"] for r in rows}):
            cells = [run_label(run), system]
            for n in sizes:
                got = [r for r in rows if r["system"] == system and r["nodes"] == n]
                if not got:
                    cells.append("")
                    continue
                r = got[0]
                mark = "" if r.get("per_element_method") == "kernel" else " †"
                cells.append(f"{r['per_element_s'] * 1e6:.2f} µs{mark} (set-up {r['setup_s']:.3g} s)")
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Per element: the kernel's time over the elements swept, one thread "
              "(benchmarks/bench_scaling.py).  † older runs: the chunks' time minus four separately "
              "measured set-ups, which load can inflate many times over."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Saved benchmark runs -> Markdown table and PNGs")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=RESULTS / "report")
    parser.add_argument("--floors", type=Path, default=FLOORS)
    parser.add_argument("--last", type=int, default=8, help="runs shown in the table")
    args = parser.parse_args(argv)
    runs = load_runs(args.results)
    if not runs:
        print(f"no saved runs in {args.results} (run `make bench` first)", file=sys.stderr)
        return 1
    floors = load_floors(args.floors) if args.floors.exists() else {}
    args.out.mkdir(parents=True, exist_ok=True)
    md = table(runs, floors, args.last)
    (args.out / "ratios.md").write_text(md)
    pngs = plots(runs, floors, args.out)
    print(md)
    sweep = sweep_per_element(args.results, args.last)
    if sweep:
        (args.out / "sweep-per-element.md").write_text(sweep)
        print("N-1 sweep per element (make bench-scaling):\n" + sweep)
    print(f"wrote {args.out / 'ratios.md'} and {len(pngs)} PNG(s) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
