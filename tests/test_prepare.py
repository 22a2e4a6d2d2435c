"""``Scenario.prepare``: per-layer/kind tables are looked up once per (layer, kind) pair and the
element keys are hashed once per compiled system, with the same results as the per-element
definitions (the oracles here read the system's tables directly)."""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest

from cascade import compile_system, read_system
from cascade import hazards
from cascade.hazards import Elements, element_keys, load_scenario

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "networks" / "demo_town"
SCEN = ROOT / "scenarios"


@pytest.fixture(scope="module")
def demo():
    system = read_system(DEMO)
    return system, compile_system(system)


def per_element(table, layers, kinds, default=None):
    """The definition: table['layer:kind'], else table[kind], else table[layer], else default."""
    return [table.get(f"{l}:{k}", table.get(k, table.get(l, default))) for l, k in zip(layers, kinds)]


def test_element_keys_are_blake2b_little_endian():
    ids = ["P-SUB-T03", "W-TP-2->W-PS-05", "", "é", 17, 3.5]
    want = [int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest(), "little") for i in ids]
    assert element_keys(ids).tolist() == want
    assert element_keys(np.array(ids[:4], dtype=object)).tolist() == want[:4]
    got = element_keys([])
    assert got.dtype == np.uint64 and got.shape == (0,)


def test_random_and_flood_tables_match_the_per_element_definition(demo):
    system, compiled = demo
    nodes, edges = system.nodes, system.edges
    node_layer, node_kind = nodes["layer"].tolist(), nodes["kind"].tolist()
    edge_layer = [node_layer[i] for i in compiled.edge_src]
    edge_kind = edges["kind"].astype(str).tolist() if "kind" in edges else [""] * len(edges)
    rand = load_scenario(SCEN / "random_failures.toml")
    prep = rand.prepare(system, compiled)
    table = rand.hazard.fraction
    assert prep["pn"].tolist() == [float(v) for v in per_element(table, node_layer, node_kind, 0.0)]
    assert prep["pe"].tolist() == [float(v) for v in per_element(table, edge_layer, edge_kind, 0.0)]
    assert 0 < np.count_nonzero(prep["pn"]) < len(prep["pn"])        # the table matters here
    flood = load_scenario(SCEN / "flood_heavy_rain.toml")
    thr = flood.hazard.threshold
    want = np.array(per_element(thr, node_layer, node_kind, thr.get("default", np.inf)), float)
    elements = Elements.of(system, compiled)
    got = hazards._lookup(thr, elements.node_layer, elements.node_kind, thr.get("default", np.inf),
                          elements.groups()).astype(float)
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(want).any() and np.isinf(want).any()


def test_earthquake_fragility_per_node_matches_the_definition(demo):
    from cascade.fragility import CLASS_MEASURE
    from cascade.hazards import HAZUS_CLASSES

    system, compiled = demo
    quake = load_scenario(SCEN / "earthquake_m62.toml")
    hz = quake.hazard
    elements = Elements.of(system, compiled)
    median, beta, measure = hz._node_fragility(elements)
    state = hazards.DAMAGE_STATES.index(hz.damage_state)
    entries = per_element(hz.fragility, system.nodes["layer"].tolist(), system.nodes["kind"].tolist())
    for i, entry in enumerate(entries):
        if entry is None:
            assert median[i] == np.inf and beta[i] == 1.0 and measure[i] == "PGA"
        elif isinstance(entry, str):
            assert (median[i], beta[i]) == tuple(HAZUS_CLASSES[entry][state])
            assert measure[i] == CLASS_MEASURE.get(entry, "PGA")
        else:
            assert (median[i], beta[i]) == tuple(entry)
    assert np.isfinite(median).sum() > 100


def test_a_second_scenario_on_the_same_system_hashes_no_ids(demo, monkeypatch):
    """Preparing several scenarios on one compiled system (risk, redundancy, report) hashes
    its 10 194 ids once; a system with other ids gets its own keys."""
    system, _ = demo
    compiled = compile_system(system)
    calls = []
    real = hazards.element_keys
    monkeypatch.setattr(hazards, "element_keys", lambda ids: calls.append(len(ids)) or real(ids))
    first = load_scenario(SCEN / "earthquake_m62.toml").prepare(system, compiled)
    assert calls == [compiled.n_nodes, compiled.n_edges]
    second = load_scenario(SCEN / "random_failures.toml").prepare(system, compiled)
    third = load_scenario(SCEN / "flood_heavy_rain.toml").prepare(system, compiled)
    assert calls == [compiled.n_nodes, compiled.n_edges]
    for prep in (second, third):
        assert prep["elements"].node_keys is first["elements"].node_keys
    np.testing.assert_array_equal(first["elements"].node_keys, real(compiled.node_ids))
    np.testing.assert_array_equal(first["elements"].edge_keys, real(compiled.edge_ids))
    # another system (other ids): hashed afresh, not the cached keys
    small = read_system(ROOT / "networks" / "flow_town")
    other = compile_system(small)
    keys = hazards._element_keys_of(other)
    assert calls[2:] == [other.n_nodes, other.n_edges]
    assert keys[0].tolist() == real(other.node_ids).tolist()


def test_elements_pickle_without_their_pair_index(demo):
    """The (layer, kind) index stays on the machine that built it (not sent to Dask
    workers); unpickled, it is rebuilt the same on demand."""
    system, compiled = demo
    elements = Elements.of(system, compiled)
    pairs, inverse = elements.groups()
    assert elements._pairs and len(pairs) < 50 and len(inverse) == compiled.n_nodes
    back = pickle.loads(pickle.dumps(elements))
    assert back._pairs == {}
    again = back.groups()
    assert [again[0][i] for i in again[1]] == [pairs[i] for i in inverse] \
        == list(zip(elements.node_layer.tolist(), elements.node_kind.tolist()))
