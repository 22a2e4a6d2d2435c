"""Coupling by geography on hand-made layouts with known nearest neighbours, and against a plain
brute-force version (every distance, sorted) on random layouts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cascade import InfrastructureSystem, InputError, read_system, simulate, write_system
from cascade.couple import couple, couple_system
from cascade.io.imports import append_rows


def layout():
    """Power buses on a line at x = 0, 1000, 2000, 3000 (y = 0); pumps and a tap above them.

    pump A at (100, 50): nearest bus 0, then 1000.   pump B at (2900, -40): nearest 3000, then 2000.
    pump C at (1450, 0): nearest 1000 (450 m), then 2000 (550 m).  tap T (a junction) has no x/y.
    """
    nodes = pd.DataFrame({
        "id": ["B0", "B1", "B2", "B3", "A", "B", "C", "W", "T"],
        "layer": ["power"] * 4 + ["water"] * 5,
        "kind": ["source", "bus", "bus", "bus", "pump", "pump", "pump", "source", "junction"],
        "x": [0, 1000, 2000, 3000, 100, 2900, 1450, 500, None],
        "y": [0, 0, 0, 0, 50, -40, 0, 500, None]})
    edges = pd.DataFrame({"source": ["B0", "B1", "B2", "W", "W", "W", "A"],
                          "target": ["B1", "B2", "B3", "A", "B", "C", "T"]})
    return InfrastructureSystem.from_tables(nodes, edges, crs="EPSG:32632", name="layout")


def pairs(rows):
    return list(zip(rows["dependent"], rows["supplier"]))


def test_nearest_one():
    rows, stats = couple(layout(), "water:pump", "power", nearest=1)
    assert pairs(rows) == [("A", "B0"), ("B", "B3"), ("C", "B1")]
    assert list(rows["group"]) == ["", "", ""]
    assert rows["distance"].tolist() == pytest.approx([np.hypot(100, 50), np.hypot(100, 40), 450], abs=1e-3)
    assert stats["dependents"] == 3 and stats["rows"] == 3 and stats["unmatched"] == 0


def test_nearest_two_as_alternatives_with_backup():
    rows, _ = couple(layout(), "water:pump", "power:bus", nearest=2, group=True, delay=4)
    # B0 is kind "source", so only B1..B3 supply
    assert pairs(rows) == [("A", "B1"), ("A", "B2"), ("B", "B3"), ("B", "B2"), ("C", "B1"), ("C", "B2")]
    assert set(rows["group"]) == {"power"} and set(rows["delay"]) == {4.0}


def test_radius_and_dependents_without_coordinates():
    rows, stats = couple(layout(), "water", "power", radius=600)
    assert pairs(rows) == [("A", "B0"), ("B", "B3"), ("C", "B1"), ("C", "B2")]
    assert stats["without_coordinates"] == 1  # T
    assert stats["unmatched"] == 1  # W: 707 m from B0 and B1
    rows, _ = couple(layout(), "water", "power", radius=710)
    assert ("W", "B0") in pairs(rows) and ("W", "B1") in pairs(rows)
    rows, stats = couple(layout(), "water:pump", "power", radius=10)
    assert len(rows) == 0 and stats["unmatched"] == 3


def test_same_layer_never_couples_a_node_to_itself():
    rows, _ = couple(layout(), "power", "power", nearest=1)
    assert pairs(rows) == [("B0", "B1"), ("B1", "B0"), ("B2", "B1"), ("B3", "B2")]  # ties: file order


def test_cascade_follows_the_new_dependencies(tmp_path):
    system, _ = couple_system(layout(), "water:pump", "power", nearest=1)
    result = simulate(system, ["B1"])  # B1 feeds B2, B3 (radial line) and pump C
    failed = set(result.failed()["id"])
    assert {"B1", "B2", "B3", "B", "C"} <= failed and "A" not in failed


def test_groups_get_unique_labels_and_existing_pairs_are_skipped():
    system, _ = couple_system(layout(), "water:pump", "power", nearest=1, group=True)
    rows, stats = couple(system, "water:pump", "power", nearest=2, group=True)
    assert stats["existing"] == 3
    assert pairs(rows) == [("A", "B1"), ("B", "B2"), ("C", "B2")]
    assert set(rows["group"]) == {"power-2"}


@pytest.mark.parametrize("kwargs,message", [
    ({"nearest": 1, "radius": 5}, "exactly one"),
    ({}, "exactly one"),
    ({"nearest": 0}, "at least 1"),
    ({"radius": -1}, "distance"),
    ({"nearest": 1, "delay": -2}, "hours"),
])
def test_bad_options(kwargs, message):
    with pytest.raises(InputError, match=message):
        couple(layout(), "water:pump", "power", **kwargs)


def test_unknown_layer_or_kind():
    with pytest.raises(InputError, match="no layer 'gas'"):
        couple(layout(), "gas", "power", nearest=1)
    with pytest.raises(InputError, match="no node of kind 'cell'"):
        couple(layout(), "water:cell", "power", nearest=1)


def brute(dep_xy, sup_xy, k):
    """The plain version: every distance, sorted by (distance, supplier order)."""
    out = []
    for i, p in enumerate(dep_xy):
        d = np.hypot(*(sup_xy - p).T)
        order = sorted(range(len(sup_xy)), key=lambda j: (d[j], j))[:k]
        out += [(f"D{i}", f"S{j}") for j in order]
    return out


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 30), st.integers(1, 12), st.integers(1, 4), st.integers(0, 10_000))
@example(21, 4, 2, 1175)  # a tie at the k-th distance that the k-d tree broke the other way
def test_nearest_equals_brute_force(n_dep, n_sup, k, seed):
    rng = np.random.default_rng(seed)
    dep = rng.integers(0, 50, size=(n_dep, 2)).astype(float)  # integer grid: many ties
    sup = rng.integers(0, 50, size=(n_sup, 2)).astype(float)
    nodes = pd.DataFrame({"id": [f"D{i}" for i in range(n_dep)] + [f"S{j}" for j in range(n_sup)],
                          "layer": ["a"] * n_dep + ["b"] * n_sup,
                          "x": np.r_[dep[:, 0], sup[:, 0]], "y": np.r_[dep[:, 1], sup[:, 1]]})
    system = InfrastructureSystem.from_tables(nodes)
    rows, _ = couple(system, "a", "b", nearest=k)
    assert pairs(rows) == brute(dep, sup, k)
    r = float(rng.integers(0, 40))
    rows, _ = couple(system, "a", "b", radius=r)
    want = [(f"D{i}", f"S{j}") for i, p in enumerate(dep)
            for j in sorted(np.flatnonzero(np.hypot(*(sup - p).T) <= r),
                            key=lambda j: (np.hypot(*(sup[j] - p)), j))]
    assert pairs(rows) == want


def test_append_rows_keeps_existing_cells(tmp_path):
    write_system(layout(), tmp_path)
    before = (tmp_path / "nodes.csv").read_text()
    deps_before = (tmp_path / "dependencies.csv").read_text()
    rows, _ = couple(read_system(tmp_path), "water:pump", "power", nearest=1, delay=2.5)
    append_rows(tmp_path, dependencies=rows)
    assert (tmp_path / "nodes.csv").read_text() == before
    text = (tmp_path / "dependencies.csv").read_text()
    assert text.startswith(deps_before.splitlines()[0].split(",")[0])
    again = read_system(tmp_path).dependencies
    assert pairs(again) == pairs(rows) and set(again["delay"]) == {2.5}
