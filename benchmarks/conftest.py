"""Shared set-up of the benchmark suite (pytest-benchmark).

Collection
----------
Files named ``benchmarks/bench_<topic>.py`` are collected as test modules (pytest's default
pattern is ``test_*.py``), so ``pytest benchmarks`` runs the whole suite and
``pytest benchmarks/bench_simulate.py`` one file.

Convention (see the project brief)
----------------------------------
Each measured function is a test ``test_<kernel>_<impl>[<size>]`` that sets
``benchmark.group = "<kernel>-<size>"``, ``benchmark.extra_info["impl"]`` (``"core"``,
``"reference"``, ``"igraph"``, ...) and ``benchmark.extra_info["kernel"]``; a baseline measured
on a sample sets ``benchmark.extra_info["scale"]`` (time of the full job = measured time x
scale).  ``benchmarks/check.py`` turns a run's JSON into ratios baseline/core per group.
With ``CASCADE_BENCH_QUICK=1`` only the smallest size runs (``make bench-check``).

Fixtures
--------
``quick``
    True under ``CASCADE_BENCH_QUICK=1``.
``er_system``
    ``er_system(n, k=4.0, seed=ER_SEED) -> (InfrastructureSystem, CompiledSystem)``: two fully
    coupled Erdős–Rényi layers of ``n`` nodes (Buldyrev et al., Nature 464, 1025, 2010), built by
    :func:`cascade.generators.coupled_er` once per session and cached.
``demo_system``
    ``(InfrastructureSystem, CompiledSystem)`` of ``networks/demo_town``.  A missing demo is an
    error, not a skip: the check must not pass on a suite that silently measured less.
``random_removal``
    ``random_removal(compiled, fraction, seed=REMOVAL_SEED, layer=None) -> ndarray``: sorted
    indices of a seeded random ``fraction`` of the nodes (of one layer when ``layer`` is given).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "networks" / "demo_town"
QUICK = os.environ.get("CASCADE_BENCH_QUICK", "") not in ("", "0")
ER_SEED = 8
REMOVAL_SEED = 20


# Scripts in the bench_ namespace that are not pytest-benchmark modules.
NOT_COLLECTED = {"bench_scaling.py",     # `make bench-scaling`: minutes long, fits exponents
                 "bench_files.py"}       # `make bench-files`: 10^6 nodes from CSV, real processes


def pytest_collect_file(file_path, parent):
    # Explicit paths (``pytest benchmarks/bench_x.py``) are collected by pytest itself already.
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and file_path.name not in NOT_COLLECTED
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def quick() -> bool:
    return QUICK


_ER_CACHE: dict = {}


@pytest.fixture(scope="session")
def er_system():
    from cascade import compile_system
    from cascade.generators import coupled_er

    def build(n: int, k: float = 4.0, seed: int = ER_SEED):
        key = (n, k, seed)
        if key not in _ER_CACHE:
            system = coupled_er(n, k, seed=seed)
            _ER_CACHE[key] = (system, compile_system(system))
        return _ER_CACHE[key]

    return build


@pytest.fixture(scope="session")
def demo_system():
    from cascade import compile_system
    from cascade.io import read_system

    if not (DEMO / "nodes.csv").exists():
        raise FileNotFoundError(f"{DEMO} is missing: the demo benchmarks cannot run")
    system = read_system(DEMO)
    return system, compile_system(system)


@pytest.fixture(scope="session")
def random_removal():
    def draw(compiled, fraction: float, seed: int = REMOVAL_SEED, layer: str | None = None):
        if layer is None:
            pool = np.arange(compiled.n_nodes)
        else:
            li = compiled.layer_names.index(layer)
            pool = np.asarray(compiled.layer_nodes[compiled.layer_ptr[li]:compiled.layer_ptr[li + 1]])
        rng = np.random.default_rng(seed)
        chosen = rng.choice(pool, size=int(round(fraction * len(pool))), replace=False)
        return np.sort(chosen).astype(compiled.index_dtype)

    return draw
