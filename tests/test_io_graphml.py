"""GraphML importer: an OSMnx-style street graph written by networkx."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pyproj
import pytest

from cascade import InputError
from cascade.io.graphml import read_graphml
from cascade.io.imports import import_network


def street_graph(seed=0, n=30):
    """A directed multigraph like OSMnx saves: lon/lat x, y, crs, length, parallel edges."""
    rng = np.random.default_rng(seed)
    g = nx.MultiDiGraph(crs="epsg:4326")
    for i in range(n):
        g.add_node(i, x=7.8 + 0.02 * rng.random(), y=48.4 + 0.02 * rng.random(), street_count=3)
    for i in range(n - 1):
        g.add_edge(i, i + 1, length=100.0 + i, highway="residential", geometry="LINESTRING (0 0, 1 1)")
        g.add_edge(i + 1, i, length=100.0 + i)
    g.add_edge(0, 1, length=300.0)  # a parallel street
    g.nodes[0]["kind"] = "intersection"
    g.nodes[3]["demand"] = 2.5
    return g


def test_counts_and_attributes(tmp_path):
    g = street_graph()
    nx.write_graphml(g, tmp_path / "streets.graphml")
    layer = read_graphml(tmp_path / "streets.graphml", layer="transport", prefix="R-")
    assert len(layer.nodes) == g.number_of_nodes()
    assert len(layer.edges) == g.number_of_edges()
    assert layer.edges["id"].is_unique
    assert layer.edges["directed"].all()
    assert layer.crs == "epsg:4326"
    assert "geometry" not in layer.edges.columns
    assert layer.nodes["demand"].sum() == pytest.approx(2.5)
    assert layer.nodes.set_index("id").loc["R-0", "kind"] == "intersection"
    lengths = sorted(d["length"] for _, _, d in g.edges(data=True))
    assert sorted(layer.edges["length"]) == pytest.approx(lengths)


def test_import_reprojects_to_utm(tmp_path):
    g = street_graph()
    nx.write_graphml(g, tmp_path / "streets.graphml")
    system, _ = import_network("graphml", tmp_path / "streets.graphml", "transport", tmp_path / "s")
    assert system.crs == "EPSG:32632"
    t = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32632", always_xy=True)
    x, y = t.transform(g.nodes[5]["x"], g.nodes[5]["y"])
    row = system.nodes.set_index("id").loc["transport-5"]
    assert (row["x"], row["y"]) == pytest.approx((x, y), abs=0.01)


def test_undirected_graph_without_crs(tmp_path):
    g = nx.les_miserables_graph()  # ships inside networkx; no coordinates
    nx.write_graphml(g, tmp_path / "g.graphml")
    system, note = import_network("graphml", tmp_path / "g.graphml", "social", tmp_path / "s")
    assert len(system.nodes) == g.number_of_nodes() and len(system.edges) == g.number_of_edges()
    assert not system.edges["directed"].any()
    assert note.endswith("no coordinates")


def test_malformed_graphml_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.graphml"
    path.write_text("<graphml><graph><node id='a'></graph>")
    with pytest.raises(InputError, match="malformed GraphML") as err:
        read_graphml(path)
    assert str(path) in str(err.value)
