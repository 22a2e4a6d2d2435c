"""The combinatorial lower bound of the resilience loss (cascade/milp_bound.py) and how the
``milp`` strategy reports it: never above a brute force over every repair order (several
layers, a pool, backups, a giant layer), never above the MILP's proven optimum, the k-th
completion bound against an exhaustive search over crew assignments, absent (not wrong) with
flow layers, and the CLI's line and JSON."""
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cascade import InfrastructureSystem
from cascade.cli import cli
from cascade.compiled import compile_system
from cascade.milp import _combine, _gap
from cascade.milp_bound import _work_charge, applies, completion_bounds, loss_bound
from cascade.recovery import _order_policy, _play, _Problem, recover

from test_milp import failures, town
from test_milp_flow import water_town

pytest.importorskip("highspy")


def problem(system, failed, crews):
    return _Problem(system, compile_system(system), failed, crews)


def sim_bound(p):
    n_layers = len(p.compiled.layer_names)
    own = np.bincount(p.crew_layer[p.crew_layer >= 0], minlength=n_layers)
    return loss_bound(p, p.repair_time, own, int((p.crew_layer < 0).sum()), p.q0)


def brute_force(p) -> float:
    return min(_play(p, _order_policy(p, np.array(order))).loss
               for order in itertools.permutations(range(p.k)))


def variant(seed: int):
    """town(seed), with backups (odd delays) and odd repair times for odd seeds, and water read
    by the giant rule for seeds divisible by 3."""
    s = town(seed)
    if seed % 2:
        deps = s.dependencies.copy()
        deps["delay"] = 1.5
        nodes = s.nodes.copy()
        nodes["repair_time"] = nodes["repair_time"] + 0.4
        s = InfrastructureSystem.from_tables(nodes, s.edges, deps)
    if seed % 3 == 0:
        s = InfrastructureSystem.from_tables(s.nodes, s.edges, s.dependencies,
                                             rules={"power": "source", "water": "giant"})
    return s


CREWS = [{"pool": 2}, {"power": 1, "pool": 1}, 1, {"pool": 1}, {"power": 1, "water": 2}]


@pytest.mark.parametrize("seed", range(16))
def test_bound_never_exceeds_the_brute_force_optimum(seed):
    s = variant(seed)
    p = problem(s, failures(s, 6, seed), CREWS[seed % len(CREWS)])
    lb = sim_bound(p)
    best = brute_force(p)
    assert lb is not None and 0 <= lb <= best + 1e-9
    # Better than nothing: the failed nodes' own weights are lost until their repair at least.
    assert lb > 0 or best == 0


@pytest.mark.parametrize("seed", range(4))
def test_program_bound_never_exceeds_the_proven_milp_optimum(seed):
    s = town(20 + seed, n_power=6, n_water=5)
    failed = failures(s, 8, seed)
    r = recover(s, failed, strategy="milp", crews=CREWS[seed], period=1.0, time_limit=60)
    info = r.solver
    assert info["optimal"] and info["highs_bound"] is not None
    assert info["combinatorial_bound"] <= info["objective"] + 1e-9
    assert info["combinatorial_bound"] <= info["highs_bound"] + 1e-9
    # Where the program is exact (whole-hour repair times, no backups) both are the same loss,
    # so the simulation's bound holds for the replay too.
    assert info["loss_bound"] <= r.metrics["resilience_loss"] + 1e-9
    assert info["loss_gap"] == pytest.approx(
        (r.metrics["resilience_loss"] - info["loss_bound"]) / r.metrics["resilience_loss"])


def exhaustive_kth_completion(times, crews):
    """The smallest possible k-th completion time on ``crews`` machines, by trying every
    assignment of every subset of k jobs (each machine's jobs back to back)."""
    n = len(times)
    best = []
    for k in range(1, n + 1):
        value = math.inf
        for subset in itertools.combinations(range(n), k):
            for machines in itertools.product(range(crews), repeat=k):
                loads = np.zeros(crews)
                for j, m in zip(subset, machines):
                    loads[m] += times[j]
                value = min(value, loads.max())
        best.append(value)
    return np.array(best)


@pytest.mark.parametrize("seed", range(6))
def test_kth_completion_bound_against_an_exhaustive_search(seed):
    rng = np.random.default_rng(seed)
    times = rng.integers(1, 9, size=int(rng.integers(2, 6))).astype(float)
    for crews in (1, 2, 3):
        exact = exhaustive_kth_completion(times, crews)
        lb = completion_bounds(times, crews)
        assert (lb <= exact + 1e-12).all()
        assert lb[-1] >= times.sum() / crews - 1e-12      # the total work bound is in
        assert (completion_bounds(times, crews, integer=True) <= exact + 1e-12).all()
    assert np.isinf(completion_bounds(times, 0)).all()


@pytest.mark.parametrize("seed", range(6))
def test_work_charge_against_every_subset(seed):
    """The fractional knapsack never charges more than the cheapest undone set whose done
    complement fits in the capacity (every subset tried)."""
    rng = np.random.default_rng(seed)
    n = 7
    a, p = rng.integers(0, 6, n).astype(float), rng.integers(1, 6, n).astype(float)
    cand = rng.random(n) < 0.8
    for capacity in (0.0, 3.0, 7.5, 12.0, 100.0):
        idx = np.flatnonzero(cand)
        best = min(a[idx].sum() - a[list(done)].sum()
                   for r in range(len(idx) + 1) for done in itertools.combinations(idx, r)
                   if p[list(done)].sum() <= capacity)
        assert _work_charge(a, p, cand, capacity) <= best + 1e-12


def test_bound_is_absent_not_wrong_with_flow_layers():
    s = water_town(1)
    p = problem(s, ["w2", "w3", "e1"], {"pool": 2})
    assert applies(p) is not None and sim_bound(p) is None
    r = recover(s, ["w2", "w3", "e1"], strategy="milp", crews={"pool": 2}, period=1.0)
    info = r.solver
    assert info["loss_bound"] is None and info["combinatorial_bound"] is None
    assert info["loss_gap"] is None and info["bound_source"] in ("highs", None)
    assert "flow layers" in info["bound_note"]


def test_the_larger_bound_holds_and_is_named():
    assert _combine(3.0, 5.0, 10.0) == (5.0, "combinatorial")
    assert _combine(6.0, 5.0, 10.0) == (6.0, "highs")
    assert _combine(float("nan"), 5.0, 10.0) == (5.0, "combinatorial")
    assert _combine(-math.inf, None, 10.0) == (-math.inf, None)
    assert _combine(12.0, None, 10.0) == (10.0, "highs")          # never above the objective
    assert _gap(10.0, 5.0) == pytest.approx(0.5)
    assert _gap(10.0, -math.inf) == math.inf and _gap(math.inf, 5.0) == math.inf


def write_town(tmp_path, seed=4):
    s = town(seed)
    s.nodes.to_csv(tmp_path / "nodes.csv", index=False)
    s.edges.to_csv(tmp_path / "edges.csv", index=False)
    s.dependencies.to_csv(tmp_path / "dependencies.csv", index=False)
    (tmp_path / "fail.txt").write_text("\n".join(failures(s, 6, seed)) + "\n")
    return tmp_path


def test_cli_reports_the_combinatorial_bound(tmp_path):
    d = write_town(tmp_path)
    args = ["recover", str(d), "--fail-file", str(d / "fail.txt"), "-s", "milp", "--crews", "pool=2",
            "--period", "1"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "every schedule loses at least" in res.output and "combinatorial bound" in res.output
    cascade = Path(sys.executable).parent / "cascade"
    proc = subprocess.run([str(cascade), *args, "--format", "json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    milp = json.loads(proc.stdout)["milp"]
    assert milp["bound_source"] in ("highs", "combinatorial")
    assert 0 <= milp["loss_bound"] <= milp["greedy_resilience_loss"] + 1e-9
    assert 0 <= milp["loss_gap"] < 1
    assert milp["combinatorial_bound"] <= milp["bound"] + 1e-9
