"""Interdependent percolation: Buldyrev et al., Nature 464, 1025 (2010).

Two Erdős–Rényi layers of N nodes, mean degree k = 4, node i of A and node i of B depend on each
other, rule `giant`.  After removing a random fraction 1 - p of A, each layer's surviving
fraction is the largest root of P = p (1 - exp(-k P))^2: 0.5576, 0.7088, 0.8381 for
p = 0.7, 0.8, 0.9.  Finite-size fluctuations at N = 50 000 are a few thousandths; the test
averages three removals and allows 0.01.
"""
import numpy as np
import pytest

from cascade import Workspace, compile_system
from cascade.generators import coupled_er, percolation_theory

N, K = 50_000, 4.0


@pytest.fixture(scope="module")
def er_pair():
    return compile_system(coupled_er(N, K, seed=7))


def test_theory_matches_the_published_table():
    for p, expected in [(0.62, 0.3689), (0.65, 0.4598), (0.70, 0.5576), (0.80, 0.7088), (0.90, 0.8381)]:
        assert percolation_theory(p, K) == pytest.approx(expected, abs=1e-4)
    # Below p_c = 2.4554 / k the mutual giant component vanishes.
    assert percolation_theory(2.4554 / K - 0.01, K) < 1e-3


@pytest.mark.parametrize("p", [0.7, 0.8, 0.9])
def test_surviving_fraction_matches_theory(er_pair, p):
    rng = np.random.default_rng(int(p * 100))
    ws = Workspace(er_pair)
    in_a = er_pair.node_layer == er_pair.layer_names.index("A")
    in_b = ~in_a
    fractions = []
    for _ in range(3):
        removed = np.flatnonzero(in_a & (rng.random(er_pair.n_nodes) > p))
        ws.run(removed)
        survive_a = ws.working[in_a].mean()
        survive_b = ws.working[in_b].mean()
        assert survive_a == pytest.approx(survive_b)       # mutual dependency: same survivors
        fractions.append(survive_a)
    assert np.mean(fractions) == pytest.approx(percolation_theory(p, K), abs=0.01)


def test_collapse_below_the_critical_point(er_pair):
    rng = np.random.default_rng(3)
    in_a = er_pair.node_layer == er_pair.layer_names.index("A")
    ws = Workspace(er_pair)
    ws.run(np.flatnonzero(in_a & (rng.random(er_pair.n_nodes) > 0.55)))   # p = 0.55 < p_c = 0.614
    assert ws.working[in_a].mean() < 0.01
