"""Hazard samplers on hand-made cases with known answers, common random numbers, and bad files.

Statistical checks compare a frequency over N independent draws with its probability p and
allow 4 binomial standard errors, 4 * sqrt(p (1 - p) / N): a correct sampler fails such a
check with probability about 6e-5, while the errors they guard against (a wrong median, a
wrong β, a missing factor) move the frequency by far more.
"""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr

from cascade import InfrastructureSystem, InputError, compile_system
from cascade.hazards import (BJF97, Draws, element_keys, keyed_uniform, load_scenario,
                             pgv_from_sa1, pipe_repair_rate, points_in_polygons, bjf97_ln)


def binomial_tol(p: float, n: int) -> float:
    return 4 * math.sqrt(p * (1 - p) / n)


def write(tmp_path: Path, text: str, name="s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def scenario(tmp_path, hazard: str, seed=1, name="s.toml"):
    return load_scenario(write(tmp_path, f"[scenario]\nseed = {seed}\n\n[hazard]\n{hazard}\n", name))


def star_system(n_leaves=6, extra=()):
    """Power: plant -> hub -> leaves (ids leaf0..), coordinates on a line, elevation = x."""
    nodes = [{"id": "plant", "layer": "power", "kind": "source", "x": 0, "y": 0, "elevation": 100},
             {"id": "hub", "layer": "power", "kind": "substation", "x": 10, "y": 0, "elevation": 100}]
    edges = [{"id": "e-hub", "source": "plant", "target": "hub"}]
    for i in range(n_leaves):
        nodes.append({"id": f"leaf{i}", "layer": "power", "kind": "feeder", "demand": 1,
                      "x": 100 * (i + 1), "y": 0, "elevation": 100})
        edges.append({"id": f"e{i}", "source": "hub", "target": f"leaf{i}"})
    nodes += list(extra)
    return InfrastructureSystem.from_tables(pd.DataFrame(nodes), pd.DataFrame(edges))


def grid_town(side=12, seed=0) -> InfrastructureSystem:
    """A seeded two-layer town on a 100 m grid: power (a plant, substations, feeders on a
    spanning tree plus some loops) and water (a source, pumps depending on substations,
    consumers on pipes).  Every node has x, y and elevation; edges have kind and length."""
    rng = np.random.default_rng(seed)
    nodes, edges, deps = [], [], []
    for layer, p in (("power", "P"), ("water", "W")):
        for i in range(side):
            for j in range(side):
                if i == 0 and j == 0:
                    kind = "source"
                elif (i % 4, j % 4) == (2, 2):
                    kind = "substation" if layer == "power" else "pump"
                else:
                    kind = "feeder" if layer == "power" else "consumer"
                nodes.append({"id": f"{p}{i}-{j}", "layer": layer, "kind": kind,
                              "demand": 0 if kind == "source" else 1 + int(rng.integers(0, 3)),
                              "x": 100.0 * i, "y": 100.0 * j, "elevation": 5.0 + i + 0.3 * j})
        for i in range(side):
            for j in range(side):
                for di, dj in ((1, 0), (0, 1)):
                    a, b = (i, j), (i + di, j + dj)
                    if b[0] < side and b[1] < side and (dj == 0 or rng.random() < 0.5 or i == 0):
                        edges.append({"source": f"{p}{a[0]}-{a[1]}", "target": f"{p}{b[0]}-{b[1]}",
                                      "kind": "line" if layer == "power" else "pipe",
                                      "length": 100.0 + 50 * rng.random()})
    for i in range(2, side, 4):
        for j in range(2, side, 4):
            deps.append({"dependent": f"W{i}-{j}", "supplier": f"P{i}-{j}"})
    return InfrastructureSystem.from_tables(pd.DataFrame(nodes), pd.DataFrame(edges), pd.DataFrame(deps),
                                            name=f"grid{side}")


def failed_ids(compiled, sample):
    nodes, edges = sample
    return set(compiled.node_ids[nodes]) | set(compiled.edge_ids[edges])


# ------------------------------------------------------------------ random numbers
def test_keyed_uniform_is_uniform_and_keyed():
    keys = element_keys([f"n{i}" for i in range(20000)])
    u = keyed_uniform(keys, Draws.of(5, 0).salts[0])
    assert u.min() > 0 and u.max() < 1
    # Kolmogorov-Smirnov distance of 20 000 uniforms: 1.95/sqrt(n) is the 0.1 % level.
    d = np.abs(np.sort(u) - (np.arange(1, len(u) + 1) - 0.5) / len(u)).max()
    assert d < 1.95 / math.sqrt(len(u))
    # A draw depends on the key, not on the position or the other keys.
    sub = keyed_uniform(keys[[7, 3]], Draws.of(5, 0).salts[0])
    assert np.array_equal(sub, u[[7, 3]])
    # Different samples, different streams, independent-looking draws.
    v = keyed_uniform(keys, Draws.of(5, 1).salts[0])
    assert abs(np.corrcoef(u, v)[0, 1]) < 4 / math.sqrt(len(u))


def test_element_keys_are_stable_across_processes():
    # BLAKE2b, not Python's salted hash(): a fixed value.
    assert int(element_keys(["P-SUB-T01"])[0]) == int.from_bytes(
        __import__("hashlib").blake2b(b"P-SUB-T01", digest_size=8).digest(), "little")


# ------------------------------------------------------------------ flood
@pytest.mark.parametrize("level,fails", [(100.49, False), (100.51, True)])
def test_flood_level_just_below_and_above_the_threshold(tmp_path, level, fails):
    system = star_system()
    c = compile_system(system)
    sc = scenario(tmp_path, f"type = 'flood'\nlevel = {level}\n[hazard.threshold]\nsubstation = 0.5\n")
    sc.prepare(system, c)
    # Every node stands at 100 m: depth = level - 100; only the substation has a threshold.
    assert failed_ids(c, sc.sample(c, 0)) == ({"hub"} if fails else set())


def test_flood_threshold_per_kind_layer_and_default(tmp_path):
    system = star_system(extra=[{"id": "low", "layer": "power", "kind": "feeder", "x": 5, "y": 5,
                                 "elevation": 99.0}])
    c = compile_system(system)
    sc = scenario(tmp_path, "type = 'flood'\nlevel = 100.3\n[hazard.threshold]\n"
                            "default = 2.0\nfeeder = 1.0\n'power:source' = 0.1\n")
    sc.prepare(system, c)
    # plant: depth 0.3 > 0.1 (layer:kind); hub: 0.3 < default 2.0; leaves 0.3 < 1.0; low: 1.3 > 1.0.
    assert failed_ids(c, sc.sample(c, 0)) == {"plant", "low"}


def test_flood_level_sd_gives_the_normal_exceedance_probability(tmp_path):
    system = star_system()
    c = compile_system(system)
    sc = scenario(tmp_path, "type = 'flood'\nlevel = 100.2\nlevel_sd = 0.5\n[hazard.threshold]\nsubstation = 0.5\n")
    sc.prepare(system, c)
    n = 4000
    hits = sum("hub" in failed_ids(c, sc.sample(c, i)) for i in range(n))
    p = 1 - ndtr((0.5 - 0.2) / 0.5)
    assert abs(hits / n - p) < binomial_tol(p, n)


def test_flood_depth_grid(tmp_path):
    # 3 x 2 cells of 100 m from (0, 0); rows listed north first.
    (tmp_path / "depth.asc").write_text(
        "ncols 3\nnrows 2\nxllcorner 0\nyllcorner 0\ncellsize 100\nNODATA_value -9999\n"
        "0.6 0.4 -9999\n"
        "0.2 0.9 0.0\n")
    nodes = [{"id": "src", "layer": "power", "kind": "source", "x": 50, "y": 150},     # 0.6 (north-west)
             {"id": "a", "layer": "power", "kind": "sub", "x": 150, "y": 150},       # 0.4
             {"id": "b", "layer": "power", "kind": "sub", "x": 250, "y": 150},       # no data
             {"id": "c", "layer": "power", "kind": "sub", "x": 150, "y": 50},        # 0.9
             {"id": "d", "layer": "power", "kind": "sub", "x": 950, "y": 50}]        # outside
    system = InfrastructureSystem.from_tables(pd.DataFrame(nodes))
    c = compile_system(system)
    sc = scenario(tmp_path, "type = 'flood'\ndepth_grid = 'depth.asc'\n[hazard.threshold]\ndefault = 0.5\n")
    sc.prepare(system, c)
    assert failed_ids(c, sc.sample(c, 0)) == {"src", "c"}
    # With an uncertain depth, wet cells go deeper or shallower, dry ones stay dry.
    sc = scenario(tmp_path, "type = 'flood'\ndepth_grid = 'depth.asc'\nlevel_sd = 0.3\n"
                            "[hazard.threshold]\ndefault = 0.5\n")
    sc.prepare(system, c)
    seen = set().union(*(failed_ids(c, sc.sample(c, i)) for i in range(200)))
    assert seen == {"src", "a", "c"}             # never b (no data) or d (outside)


def test_flood_without_elevation_is_a_clear_error(tmp_path):
    system = InfrastructureSystem.from_tables(pd.DataFrame([{"id": "a", "layer": "p", "kind": "x"}]))
    sc = scenario(tmp_path, "type = 'flood'\nlevel = 1\n[hazard.threshold]\nx = 0.1\n")
    with pytest.raises(InputError, match="elevation"):
        sc.prepare(system)


# ------------------------------------------------------------------ earthquake
def test_bjf97_terms():
    # At M = 6 the magnitude terms vanish; at Vs30 = Va the site term vanishes.
    c = BJF97["pga"]
    expected = c["b1all"] + c["b5"] * math.log(math.hypot(3.0, c["h"]))
    assert bjf97_ln("pga", 6.0, 3.0, vs30=c["va"]) == pytest.approx(expected, abs=1e-12)
    # Strike-slip vs reverse differ only by b1; attenuation with distance is monotone.
    d = np.array([0, 5, 20, 80.0])
    assert np.all(np.diff(bjf97_ln("pga", 6.5, d)) < 0)
    assert (bjf97_ln("pga", 6.5, 10, mechanism="reverse") - bjf97_ln("pga", 6.5, 10, mechanism="strike-slip")
            == pytest.approx(c["b1rv"] - c["b1ss"]))


def test_hazus_repair_rate_matches_the_segment_probabilities():
    # Hazus RR = 0.0001 PGV^2.25 repairs/km; SimCenter's transcription of the Hazus brittle
    # pipe curve gives the expected repairs of a 20 ft segment, RR x L = 0.00010840 at
    # PGV = 10 cm/s and 0.01927724 at 100 cm/s (pelicun damage_DB_Hazus_EQ_water.csv, PWP.B.GS).
    seg_km = 20 * 0.3048 / 1000
    for pgv, p in ((10, 0.00010840), (100, 0.01927724)):
        assert pipe_repair_rate(pgv) * seg_km == pytest.approx(p, rel=1e-3)
    assert pipe_repair_rate(100, 0.3) == pytest.approx(0.3 * pipe_repair_rate(100))
    # PGV (cm/s) = 386.4 / (2π) SA1 / 1.65 inches/s: 1 g at 1 s is 94.7 cm/s.
    assert pgv_from_sa1(1.0) == pytest.approx(386.4 / (2 * math.pi) / 1.65 * 2.54)


def quake_system(n_sites, distance_m):
    """A plant far away and ``n_sites`` substations on a circle of ``distance_m`` around the
    epicentre (0, 0); no edges, so only fragility acts."""
    nodes = [{"id": "plant", "layer": "power", "kind": "source", "x": 1e6, "y": 0}]
    for i in range(n_sites):
        a = 2 * math.pi * i / n_sites
        nodes.append({"id": f"s{i}", "layer": "power", "kind": "sub",
                      "x": distance_m * math.cos(a), "y": distance_m * math.sin(a)})
    return InfrastructureSystem.from_tables(pd.DataFrame(nodes))


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_fragility_median_gives_half_failures(tmp_path, ratio):
    """A fragility median equal to the site's PGA / ratio gives Φ(ln(ratio) / β): 50 % at the median."""
    beta, sites, samples = 0.5, 50, 80
    pga = math.exp(bjf97_ln("pga", 6.5, 8.0))
    system = quake_system(sites, 8000.0)
    c = compile_system(system)
    sc = scenario(tmp_path, f"type = 'earthquake'\nepicenter = [0.0, 0.0]\nmagnitude = 6.5\n"
                            f"variability = false\n[hazard.fragility]\nsub = {{ median = {pga / ratio}, beta = {beta} }}\n"
                            f"'power:source' = false\n")
    sc.prepare(system, c)
    hits = np.zeros(c.n_nodes)
    for i in range(samples):
        hits[sc.sample(c, i)[0]] += 1
    n = sites * samples
    p = float(ndtr(math.log(ratio) / beta))
    assert abs(hits[1:].sum() / n - p) < binomial_tol(p, n)
    assert hits[0] == 0          # the plant has no fragility: never shaken


def test_ground_motion_variability_has_the_bjf97_sigma(tmp_path):
    system = quake_system(400, 5000.0)
    c = compile_system(system)
    sc = scenario(tmp_path, "type = 'earthquake'\nepicenter = [0.0, 0.0]\nmagnitude = 6.0\n"
                            "correlation = 'none'\n")       # independent intra-event terms
    prep = sc.prepare(system, c)
    ln = np.array([sc.hazard.ground_motion(prep, Draws.of(1, i))[0][1:] for i in range(40)])
    median = bjf97_ln("pga", 6.0, 5.0)
    total = math.hypot(BJF97["pga"]["sig_r"], BJF97["pga"]["sig_e"])     # 0.495 (with erratum)
    assert abs(ln.mean() - median) < 4 * BJF97["pga"]["sig_e"] / math.sqrt(40) + 0.05
    assert ln.std() == pytest.approx(total, rel=0.1)
    # The inter-event term is shared by all sites of a sample.
    within = ln.std(axis=1).mean()
    assert within == pytest.approx(BJF97["pga"]["sig_r"], rel=0.1)


def test_pipes_break_at_the_hazus_rate(tmp_path):
    # 200 pipes of 2 km between nodes 4 km from the epicentre: P(break) = 1 - exp(-0.2 RR L).
    nodes = [{"id": "src", "layer": "water", "kind": "source", "x": 4000, "y": 0}]
    edges = []
    for i in range(200):
        nodes.append({"id": f"n{i}", "layer": "water", "kind": "consumer", "x": 4000, "y": 0})
        edges.append({"id": f"p{i}", "source": "src", "target": f"n{i}", "kind": "pipe", "length": 2000})
    system = InfrastructureSystem.from_tables(pd.DataFrame(nodes), pd.DataFrame(edges))
    c = compile_system(system)
    sc = scenario(tmp_path, "type = 'earthquake'\nepicenter = [0.0, 0.0]\nmagnitude = 7.0\nvariability = false\n")
    sc.prepare(system, c)
    samples = 40
    broken = sum(len(sc.sample(c, i)[1]) for i in range(samples))
    rr = pipe_repair_rate(pgv_from_sa1(math.exp(bjf97_ln("sa1", 7.0, 4.0))))
    p = -math.expm1(-0.2 * rr * 2.0)
    assert abs(broken / (200 * samples) - p) < binomial_tol(p, 200 * samples)


def test_default_power_fragility_is_hazus(tmp_path):
    system = quake_system(3, 1000.0)
    c = compile_system(system)
    sc = scenario(tmp_path, "type = 'earthquake'\nepicenter = [0.0, 0.0]\nmagnitude = 6.0\n"
                            "[hazard.fragility]\nsub = 'EP.S.M.A'\n")
    prep = sc.prepare(system, c)
    # Extensive damage of a 230 kV anchored substation: median 0.35 g, β 0.40 (Hazus 5.1).
    assert prep["median"][1] == 0.35 and prep["beta"][1] == 0.40
    assert prep["median"][0] == 0.52          # power:source -> EP.G.ML.A extensive


# ------------------------------------------------------------------ random, targeted, region
def test_random_fraction_per_layer_and_kind(tmp_path):
    system = grid_town(20)
    c = compile_system(system)
    sc = scenario(tmp_path, "type = 'random'\n[hazard.fraction]\npower = 0.3\nwater = 0.1\npump = 0.0\n")
    sc.prepare(system, c)
    layer = np.asarray(c.layer_names)[c.node_layer]
    kind = system.nodes["kind"].to_numpy()
    counts = np.zeros(c.n_nodes)
    samples = 10
    for i in range(samples):
        nodes, edges = sc.sample(c, i)
        assert len(edges) == 0
        counts[nodes] += 1
    for name, p in (("power", 0.3), ("water", 0.1)):
        sel = (layer == name) & (kind != "pump")
        assert abs(counts[sel].sum() / (sel.sum() * samples) - p) < binomial_tol(p, sel.sum() * samples)
    assert counts[kind == "pump"].sum() == 0


def test_targeted_by_degree_and_betweenness(tmp_path):
    system = star_system()
    c = compile_system(system)
    for by in ("degree", "betweenness"):
        sc = scenario(tmp_path, f"type = 'targeted'\nby = '{by}'\ncount = 1\n")
        sc.prepare(system, c)
        assert failed_ids(c, sc.sample(c, 0)) == {"hub"}
    # Ties (all leaves have degree 1) are broken by id.
    sc = scenario(tmp_path, "type = 'targeted'\nby = 'degree'\ncount = 2\nkinds = ['feeder']\n")
    sc.prepare(system, c)
    assert failed_ids(c, sc.sample(c, 3)) == {"leaf0", "leaf1"}


def test_targeted_by_criticality_uses_the_sweep(tmp_path):
    from cascade.criticality import sweep

    system = grid_town(8)
    c = compile_system(system)
    sc = scenario(tmp_path, "type = 'targeted'\nby = 'criticality'\ncount = 3\nlayers = ['water']\n")
    sc.prepare(system, c)
    table = sweep(system, compiled=c)
    expected = set(table[table["layer"] == "water"]["id"].head(3))
    assert failed_ids(c, sc.sample(c, 0)) == expected


def test_targeted_success_probability(tmp_path):
    system = star_system(40)
    c = compile_system(system)
    sc = scenario(tmp_path, "type = 'targeted'\nby = 'degree'\nfraction = 1.0\nkinds = ['feeder']\nsuccess = 0.25\n")
    sc.prepare(system, c)
    n = 40 * 50
    hits = sum(len(sc.sample(c, i)[0]) for i in range(50))
    assert abs(hits / n - 0.25) < binomial_tol(0.25, n)


def test_region_circle_and_kinds(tmp_path):
    system = star_system()
    c = compile_system(system)
    sc = scenario(tmp_path, "type = 'region'\ncenter = [0.0, 0.0]\nradius = 250.0\n")
    sc.prepare(system, c)
    assert failed_ids(c, sc.sample(c, 0)) == {"plant", "hub", "leaf0", "leaf1"}
    sc = scenario(tmp_path, "type = 'region'\ncenter = [0.0, 0.0]\nradius = 250.0\nkinds = ['feeder']\n")
    sc.prepare(system, c)
    assert failed_ids(c, sc.sample(c, 0)) == {"leaf0", "leaf1"}


def test_region_polygon_with_a_hole(tmp_path):
    square = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]
    hole = [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]
    (tmp_path / "zone.geojson").write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
        f'"geometry": {{"type": "Polygon", "coordinates": [{square}, {hole}]}}}}]}}')
    pts = np.array([[1, 1], [5, 5], [9, 5], [11, 5], [5, -1]], float)
    assert points_in_polygons(pts[:, 0], pts[:, 1], [[np.array(square, float), np.array(hole, float)]]).tolist() \
        == [True, False, True, False, False]
    nodes = [{"id": f"n{i}", "layer": "a", "kind": "k", "x": x, "y": y} for i, (x, y) in enumerate(pts)]
    system = InfrastructureSystem.from_tables(pd.DataFrame(nodes))
    c = compile_system(system)
    sc = scenario(tmp_path, "type = 'region'\npolygon = 'zone.geojson'\n")
    sc.prepare(system, c)
    assert failed_ids(c, sc.sample(c, 0)) == {"n0", "n2"}


# ------------------------------------------------------------------ common random numbers
QUAKE = ("type = 'earthquake'\nepicenter = [300.0, 300.0]\nmagnitude = 6.8\n"
         "[hazard.fragility]\nfeeder = 'EP.C.U'\npump = 'EP.S.L.U'\nconsumer = { median = 0.5, beta = 0.6 }\n")


QUAKE_GRID = QUAKE.replace("magnitude = 6.8\n", "magnitude = 6.8\ncorrelation_method = 'grid'\n")
QUAKE_INDEPENDENT = QUAKE.replace("magnitude = 6.8\n", "magnitude = 6.8\ncorrelation = 'none'\n")


# Correlated residuals by Cholesky depend on every site, so an added shaken node changes the
# others' draws: common random numbers under additions hold for independent residuals and
# for the grid method (the grid and its keys depend only on the bounding box).
@pytest.mark.parametrize("hazard", [QUAKE_GRID, QUAKE_INDEPENDENT,
                                    "type = 'random'\nfraction = 0.2\nelements = 'all'\n"])
def test_common_random_numbers_on_a_modified_system(tmp_path, hazard):
    base = grid_town(10)
    extra = pd.concat([base.nodes, pd.DataFrame([{"id": "NEW", "layer": "power", "kind": "feeder",
                                                  "demand": 1, "x": 50.0, "y": 50.0, "elevation": 5.0}])])
    edges = pd.concat([base.edges, pd.DataFrame([{"id": "NEW-LINK", "source": "NEW", "target": "P0-0",
                                                  "kind": "line", "length": 70.0}])])
    # The extra node goes first: indices shift, draws (keyed by id) must not.
    modified = InfrastructureSystem.from_tables(extra.iloc[np.r_[len(extra) - 1, :len(extra) - 1]],
                                                edges, base.dependencies)
    sc = scenario(tmp_path, hazard)
    cb, cm = compile_system(base), compile_system(modified)
    sc.prepare(base, cb)
    sc.prepare(modified, cm)
    differ = 0
    for i in range(20):
        a = failed_ids(cb, sc.sample(cb, i))
        b = failed_ids(cm, sc.sample(cm, i)) - {"NEW", "NEW-LINK"}
        assert a == b
        differ += bool(a)
    assert differ > 0                 # the hazard does something, so equality means something


def test_immune_and_fragility_scale_act_only_where_they_apply(tmp_path):
    system = grid_town(10)
    c = compile_system(system)
    sc = scenario(tmp_path, QUAKE)
    sc.prepare(system, c)
    hit = {}
    for i in range(30):
        for name in failed_ids(c, sc.sample(c, i)):
            hit[name] = hit.get(name, 0) + 1
    target = max(hit, key=hit.get)            # an often-failing element
    for i in range(30):
        plain = failed_ids(c, sc.sample(c, i))
        assert failed_ids(c, sc.sample(c, i, immune=[target])) == plain - {target}
        strong = failed_ids(c, sc.sample(c, i, fragility_scale={target: 1e9}))
        assert strong == plain - {target}
        weak = failed_ids(c, sc.sample(c, i, fragility_scale={target: 1e-9}))
        assert weak == plain | {target}


@pytest.mark.parametrize("hazard", [
    QUAKE, QUAKE.replace("magnitude = 6.8\n", "magnitude = 6.8\nvariability = false\n"),
    "type = 'random'\nfraction = 0.2\nelements = 'all'\n",
    "type = 'flood'\nlevel = 12.0\nlevel_sd = 2.0\n[hazard.threshold]\ndefault = 0.5\n",
    "type = 'targeted'\nby = 'degree'\ncount = 5\nsuccess = 0.5\n",
    "type = 'region'\ncenter = [300.0, 300.0]\nradius = 250.0\nprobability = 0.5\n",
])
def test_sample_block_equals_sample(tmp_path, hazard):
    system = grid_town(10)
    c = compile_system(system, index_dtype=np.int64)
    sc = scenario(tmp_path, hazard, seed=9)
    sc.prepare(system, c)
    block = sc.sample_block(c, 3, 43)
    for k, i in enumerate(range(3, 43)):
        one = sc.sample(c, i)
        assert np.array_equal(block[k][0], one[0]) and np.array_equal(block[k][1], one[1])
        assert block[k][0].dtype == one[0].dtype == np.int64


def test_sample_needs_prepare_and_survives_pickling(tmp_path):
    system = grid_town(6)
    c = compile_system(system)
    sc = scenario(tmp_path, QUAKE)
    with pytest.raises(InputError, match="prepare"):
        sc.sample(c, 0)
    sc.prepare(system, c)
    copy = pickle.loads(pickle.dumps(sc))
    c2 = pickle.loads(pickle.dumps(c))            # a worker's copy: another object, same system
    for i in range(5):
        assert failed_ids(c, sc.sample(c, i)) == failed_ids(c2, copy.sample(c2, i))


def test_seed_override_changes_the_draws(tmp_path):
    system = grid_town(8)
    c = compile_system(system)
    sc = scenario(tmp_path, "type = 'random'\nfraction = 0.3\n", seed=4)
    sc.prepare(system, c)
    assert failed_ids(c, sc.sample(c, 2)) == failed_ids(c, sc.sample(c, 2, seed=4))
    assert failed_ids(c, sc.sample(c, 2)) != failed_ids(c, sc.sample(c, 2, seed=5))


# ------------------------------------------------------------------ bad files
BAD = [
    ("[scenario]\nseed = 1\n[hazard]\ntype = 'flood'\nlevel = 3\nlevle_sd = 1\n[hazard.threshold]\na = 1\n",
     "unknown key 'hazard.levle_sd'"),
    ("[scenario]\nseed = 1\ncolour = 'red'\n[hazard]\ntype = 'random'\nfraction = 0.1\n", "unknown key 'scenario.colour'"),
    ("[scenario]\nseed = 1\n[hazard]\ntype = 'flood'\nlevel = 3\n", "missing key 'hazard.threshold'"),
    ("[scenario]\n[hazard]\ntype = 'random'\nfraction = 0.1\n", "missing key 'scenario.seed'"),
    ("[scenario]\nseed = 1\n[hazard]\ntype = 'volcano'\n", "key 'hazard.type': must be one of"),
    ("[scenario]\nseed = 1\n[hazard]\ntype = 'random'\nfraction = 1.5\n", "key 'hazard.fraction': must be <= 1"),
    ("[scenario]\nseed = 1\n[hazard]\ntype = 'earthquake'\nepicenter = [1, 2]\nmagnitude = 'big'\n",
     "key 'hazard.magnitude': must be a number"),
    ("[scenario]\nseed = 1\n[hazard]\ntype = 'earthquake'\nepicenter = [1]\nmagnitude = 6\n",
     "key 'hazard.epicenter': must be [x, y]"),
    ("[scenario]\nseed = 1\n[hazard]\ntype = 'earthquake'\nepicenter = [1, 2]\nmagnitude = 6\n"
     "[hazard.fragility]\nsub = 'EP.NOPE'\n", "key 'hazard.fragility.sub': unknown Hazus class"),
    ("[scenario]\nseed = 1\n[hazard]\ntype = 'earthquake'\nepicenter = [1, 2]\nmagnitude = 6\n"
     "[hazard.fragility]\nsub = { median = -1, beta = 0.5 }\n", "key 'hazard.fragility.sub.median': must be > 0"),
    ("[scenario]\nseed = -3\n[hazard]\ntype = 'random'\nfraction = 0.1\n", "key 'scenario.seed': must be >= 0"),
    ("[scenario]\nseed = 1\n[hazard]\ntype = 'targeted'\nby = 'degree'\n", "exactly one of 'hazard.count'"),
    ("[scenario]\nseed = 1\n[hazard]\ntype = 'region'\npolygon = 'missing.geojson'\n", "missing.geojson: no such file"),
    ("[scenario]\nseed = 1\n[hazard]\ntype = 'flood'\ndepth_grid = 'none.asc'\n[hazard.threshold]\na = 1\n",
     "none.asc: no such file"),
    ("[scenario\nseed = 1\n", "malformed TOML"),
    ("[scenario]\nseed = 1\n", "missing key 'hazard'"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_scenario_files(tmp_path, text, message):
    path = write(tmp_path, text, "bad.toml")
    with pytest.raises(InputError) as err:
        load_scenario(path)
    line = str(err.value)
    assert message in line
    assert "\n" not in line
    if "no such file" not in message:
        assert line.startswith(str(path))


def test_keys_naming_nothing_in_the_system(tmp_path):
    system = star_system()
    sc = scenario(tmp_path, "type = 'flood'\nlevel = 1\n[hazard.threshold]\nsubstaton = 0.1\n")
    with pytest.raises(InputError, match="'hazard.threshold.substaton': no layer or kind"):
        sc.prepare(system)
    sc = scenario(tmp_path, "type = 'targeted'\nby = 'degree'\ncount = 1\nlayers = ['gas']\n")
    with pytest.raises(InputError, match="no layer 'gas'"):
        sc.prepare(system)


def test_missing_scenario_file(tmp_path):
    with pytest.raises(InputError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.toml")


def test_a_directory_for_a_grid_or_polygon_file_is_a_clear_error(tmp_path):
    (tmp_path / "grid.asc").mkdir()
    (tmp_path / "zone.geojson").mkdir()
    for text, name in [("type = 'flood'\ndepth_grid = 'grid.asc'\n[hazard.threshold]\na = 1\n", "grid.asc"),
                       ("type = 'region'\npolygon = 'zone.geojson'\n", "zone.geojson")]:
        path = write(tmp_path, "[scenario]\nseed = 1\n[hazard]\n" + text, "dir.toml")
        with pytest.raises(InputError) as err:
            load_scenario(path)
        assert str(err.value) == f"{tmp_path / name}: is a directory, not a file"


def test_shipped_scenarios_load_and_prepare_on_their_towns():
    from cascade import read_system

    root = Path(__file__).resolve().parent.parent
    files = sorted((root / "scenarios").glob("*.toml"))
    assert {f.stem for f in files} >= {"flood_heavy_rain", "earthquake_m62", "attack_communication",
                                       "random_failures"}
    towns = {}
    for f in files:
        sc = load_scenario(f)
        # every shipped file names a bundled system (the demo town, its flow edition, flow_town)
        assert sc.system is not None and sc.system.parent == (root / "networks").resolve(), f.name
        if sc.system not in towns:
            towns[sc.system] = (read_system(sc.system), None)
            towns[sc.system] = (towns[sc.system][0], compile_system(towns[sc.system][0]))
        system, c = towns[sc.system]
        sc.prepare(system, c)
        # Some sample among the first few fails something (a storm's sample 0 may stay
        # within the drainage pumps' reach).
        assert any(sum(map(len, sc.sample(c, i))) > 0 for i in range(5)), f.name
