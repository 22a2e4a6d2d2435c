"""``Scenario.prepare`` on the demo town: a first prepare and a second one on the same system.

    python benchmarks/prepare_speed.py [REPEATS] [SCENARIO.toml ...]

For each scenario file (default: the earthquake, random failures, flood and rainfall scenarios
of ``scenarios/``), ``REPEATS`` times (default 9): a fresh :func:`cascade.compile_system` of
``networks/demo_town`` (outside the timing), then ``prepare`` of the scenario on it ("first",
what one ``cascade scenario`` run pays) and ``prepare`` of a newly loaded copy on the same
compiled system ("again", what each further scenario of ``risk``, ``redundancy`` or
``report`` pays).  Prints min and median in ms.  Run it on two commits in alternation to
compare them (the machine's load moves single runs by 2x).
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["earthquake_m62.toml", "random_failures.toml", "flood_heavy_rain.toml", "rainfall_100yr.toml"]


def main(argv: list[str]) -> None:
    from cascade import compile_system, read_system
    from cascade.hazards import load_scenario

    repeats = int(argv[0]) if argv else 9
    names = argv[1:] or DEFAULT
    system = read_system(ROOT / "networks" / "demo_town")
    print(f"{'scenario':<24} {'first min':>10} {'median':>8} {'again min':>10} {'median':>8}  (ms)")
    for name in names:
        path = Path(name) if Path(name).exists() else ROOT / "scenarios" / name
        first, again = [], []
        for _ in range(repeats):
            compiled = compile_system(system)
            scenario = load_scenario(path)
            t = time.perf_counter()
            scenario.prepare(system, compiled)
            first.append(time.perf_counter() - t)
            scenario = load_scenario(path)
            t = time.perf_counter()
            scenario.prepare(system, compiled)
            again.append(time.perf_counter() - t)
        ms = lambda xs: (1e3 * min(xs), 1e3 * statistics.median(xs))
        print(f"{path.name:<24} {ms(first)[0]:>10.1f} {ms(first)[1]:>8.1f} {ms(again)[0]:>10.1f} {ms(again)[1]:>8.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
