"""Cost of the correlated ground-motion fields per sample on the demo town (README figures).

    python benchmarks/field_speed.py [SAMPLES] [REPEATS]

For each grid field of ``scenarios/earthquake_m62.toml`` (PGA at the facilities, PGV at the
pipe midpoints): microseconds per field of ``GridField.draw_base`` (compiled normals, FFT of
the used columns, compiled interpolation) and of ``GridField.draw_reference`` (the numpy
computation it replaced), blocks of 32 fields; then whole 1-thread runs of SAMPLES samples with
the shipped (correlated) file and with ``correlation = "none"``, whose difference is what the
correlated residuals cost per sample.  Times are this thread's CPU time (``time.thread_time``),
the minimum over REPEATS, so that other jobs on the machine disturb them less than wall time;
every run is checked to give the losses of the first.  With another checkout first on
PYTHONPATH (code without ``draw_reference``), only the runs are timed.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from ensemble_speed import independent_copy  # noqa: E402


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t)
    return best


def main(samples: int = 2000, repeats: int = 3) -> None:
    from cascade import compile_system, load_scenario, read_system, run_ensemble
    from cascade.correlation import GridField

    system = read_system(ROOT / "networks" / "demo_town")
    compiled = compile_system(system)
    quake = ROOT / "scenarios" / "earthquake_m62.toml"
    tmp = Path(tempfile.mkdtemp())
    independent_copy(quake, tmp / "none.toml")
    scenario = load_scenario(quake)
    prep = scenario.prepare(system, compiled)
    fields = [f for _, f in prep["fields"]["nodes"]] + [prep["fields"]["edges"]]
    salts = np.arange(1, 33, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    print("per field, blocks of 32 (us, thread CPU time, best of %d x 10 blocks)" % repeats)
    for f in fields:
        if not isinstance(f, GridField) or not hasattr(f, "draw_reference"):
            continue                                 # (older code: only the runs below)
        assert np.array_equal(f.draw_base(salts), f.draw_reference(salts))
        new = _best(lambda: [f.draw_base(salts) for _ in range(10)], repeats) / 320 * 1e6
        old = _best(lambda: [f.draw_reference(salts) for _ in range(10)], repeats) / 320 * 1e6
        print(f"  {f.n_sites:5d} sites, grid {f.shape[0]} x {f.shape[1]}: draw_base {new:6.1f}"
              f"   numpy reference {old:6.1f}   x{old / new:.2f}")
    per = {}
    for label, path in (("correlated", quake), ("independent", tmp / "none.toml")):
        sc = load_scenario(path)
        sc.prepare(system, compiled)
        expected = run_ensemble(system, sc, samples, threads=1, compiled=compiled).loss

        def run():
            assert np.array_equal(run_ensemble(system, sc, samples, threads=1, compiled=compiled).loss,
                                  expected, equal_nan=True)

        per[label] = _best(run, repeats) / samples * 1e6
        print(f"{label:11s} 1 thread, {samples} samples: {per[label]:6.1f} us/sample "
              f"({1e6 / per[label]:.0f} samples/s of CPU)")
    print(f"correlated residuals cost {per['correlated'] - per['independent']:.1f} us/sample "
          f"({per['correlated'] / per['independent']:.2f}x the independent run)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
