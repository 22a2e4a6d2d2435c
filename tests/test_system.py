"""Loader and validation (docs/format.md "Bad input"), from_networkx, and the compile step."""
import networkx as nx
import numpy as np
import pandas as pd
import pytest

from cascade import InfrastructureSystem, InputError, compile_system, read_system, write_system

from conftest import write_dir

NODES = """id,layer,kind,demand
           a,power,source,1
           b,power,,2
           c,water,,3"""
EDGES = """source,target
           a,b"""


def read(tmp_path, nodes=NODES, edges=EDGES, deps="dependent,supplier\nc,b", toml=None):
    return read_system(write_dir(tmp_path / "s", nodes, edges, deps, toml))


def test_reads_a_valid_system(tmp_path):
    s = read(tmp_path, toml='[system]\nname = "x"\ncrs = "EPSG:32650"\n[layers.water]\nrule = "none"')
    assert s.name == "x" and s.crs == "EPSG:32650"
    assert s.layer_rules() == {"power": "source", "water": "none"}
    assert list(s.edges["id"]) == ["a->b"]
    assert s.edges["directed"].tolist() == [False]
    assert s.nodes["demand"].tolist() == [1.0, 2.0, 3.0]
    assert s.dependencies["delay"].tolist() == [0.0]


def test_default_rule_is_giant_without_a_source(tmp_path):
    s = read(tmp_path, nodes="id,layer\na,power\nb,power\nc,water")
    assert s.layer_rules() == {"power": "giant", "water": "giant"}


def test_extra_columns_are_kept_as_attributes(tmp_path):
    s = read(tmp_path, nodes="id,layer,elevation,owner\na,power,3.5,city\nb,power,,city\nc,water,1,x")
    assert s.nodes["elevation"].dtype == float and np.isnan(s.nodes["elevation"][1])
    assert s.nodes["owner"].tolist() == ["city", "city", "x"]


@pytest.mark.parametrize("case, file, line, words", [
    (dict(nodes="id,layer\na,power\na,water\nc,water"), "nodes.csv", 3, "duplicate node id 'a'"),
    (dict(nodes="id\na"), "nodes.csv", None, "missing required column 'layer'"),
    (dict(nodes="id,layer\na,\nb,power\nc,water"), "nodes.csv", 2, "empty 'layer'"),
    (dict(nodes="id,layer,demand\na,power,x\nb,power,1\nc,water,1"), "nodes.csv", 2, "'demand' is not a number"),
    (dict(nodes="id,layer,demand\na,power,1\nb,power,-2\nc,water,1"), "nodes.csv", 3, "'demand' is negative"),
    (dict(edges="source,target\na,b\nb,zz"), "edges.csv", 3, "unknown node 'zz'"),
    (dict(edges="source,target\na,c"), "edges.csv", 2, "joins layer 'power' to layer 'water'"),
    (dict(edges="id,source,target\ne,a,b\ne,b,a"), "edges.csv", 3, "duplicate edge id 'e'"),
    (dict(edges="source,target,directed\na,b,maybe"), "edges.csv", 2, "'directed' must be true or false"),
    (dict(edges="source,target,length\na,b,-1"), "edges.csv", 2, "'length' is negative"),
    (dict(edges="source\na"), "edges.csv", None, "missing required column 'target'"),
    (dict(deps="dependent,supplier\nc,b\nc,nope"), "dependencies.csv", 3, "supplier 'nope' is not a node"),
    (dict(deps="dependent,supplier\nnope,b"), "dependencies.csv", 2, "dependent 'nope' is not a node"),
    (dict(deps="dependent,supplier,delay\nc,b,-1"), "dependencies.csv", 2, "'delay' is negative"),
    (dict(deps="dependent,supplier,delay\nc,b,soon"), "dependencies.csv", 2, "'delay' is not a number"),
    (dict(deps="dependent,supplier\nc,c"), "dependencies.csv", 2, "depends on itself"),
    (dict(deps="dependent\nc"), "dependencies.csv", None, "missing required column 'supplier'"),
    (dict(toml="[layers.power]\nrule = \"biggest\""), "system.toml", None, "unknown rule 'biggest'"),
    (dict(toml="[system]\nnmae = \"x\""), "system.toml", None, "unknown key 'nmae'"),
    (dict(toml="[system\nname = 1"), "system.toml", None, "malformed TOML"),
    (dict(nodes="id,layer\na,power,extra,fields\nb,power"), "nodes.csv", 2, "malformed CSV"),
])
def test_bad_input_names_file_line_and_problem(tmp_path, case, file, line, words):
    with pytest.raises(InputError) as info:
        read(tmp_path, **case)
    err = info.value
    assert err.file.endswith(file)
    assert err.line == line
    assert words in str(err)
    assert "\n" not in str(err)


def test_missing_files(tmp_path):
    with pytest.raises(InputError, match="no such directory"):
        read_system(tmp_path / "nothing")
    d = tmp_path / "d"
    d.mkdir()
    with pytest.raises(InputError, match="nodes.csv: missing file"):
        read_system(d)
    (d / "nodes.csv").write_text("")
    with pytest.raises(InputError, match="nodes.csv: empty file"):
        read_system(d)


def test_dependencies_file_is_optional(tmp_path):
    s = read_system(write_dir(tmp_path / "s", NODES, EDGES))
    assert len(s.dependencies) == 0


def test_write_then_read_round_trips(tmp_path):
    s = read(tmp_path, toml='[system]\nname = "rt"\n[layers.water]\nrule = "none"')
    write_system(s, tmp_path / "out")
    back = read_system(tmp_path / "out")
    pd.testing.assert_frame_equal(s.nodes, back.nodes)
    pd.testing.assert_frame_equal(s.edges, back.edges)
    pd.testing.assert_frame_equal(s.dependencies, back.dependencies)
    assert (back.name, back.rules) == ("rt", {"water": "none"})


def test_from_networkx_builds_the_same_system_as_files(tmp_path):
    power = nx.DiGraph()
    power.add_node("a", kind="source", demand=1)
    power.add_node("b", demand=2)
    power.add_edge("a", "b", id="line1")
    water = nx.Graph()
    water.add_node("c", demand=3)
    s = InfrastructureSystem.from_networkx({"power": power, "water": water},
                                           [("c", "b", {"group": "g", "delay": 4})])
    assert s.edges[["id", "source", "target", "directed"]].values.tolist() == [["line1", "a", "b", True]]
    assert s.dependencies[["dependent", "supplier", "group", "delay"]].values.tolist() == [["c", "b", "g", 4.0]]
    with pytest.raises(InputError, match=r"nodes \(from networkx\), row 3: duplicate node id 'zz'"):
        InfrastructureSystem.from_networkx({"power": nx.Graph([("a", "zz")]), "water": nx.Graph([("zz", "y")])})
    with pytest.raises(InputError, match="dependent 'nobody' is not a node"):
        InfrastructureSystem.from_networkx({"power": power}, [("nobody", "a")])


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_compile_builds_groups_in_table_order(tmp_path, dtype):
    s = read(tmp_path, deps="""dependent,supplier,group
                               c,b,g2
                               c,a,g1
                               c,a,g2
                               c,a,g2
                               c,b,""")
    c = compile_system(s, index_dtype=dtype)
    assert c.adj_ptr.dtype == dtype and c.sup_idx.dtype == dtype
    v = c.node_index(["c"])[0]
    groups = range(c.grp_ptr[v], c.grp_ptr[v + 1])
    members = [list(c.node_ids[c.sup_idx[c.sup_ptr[g]:c.sup_ptr[g + 1]]]) for g in groups]
    assert members == [["b", "a"], ["a"], ["b"]]         # g2 (deduplicated), g1, the plain row
    assert list(c.group_name[list(groups)]) == ["g2", "g1", ""]


# ------------------------------------------------------------------ units, weights, bases, currency

UNITS_TOML = """[system]
name = "u"
currency = "EUR"
[layers.power]
unit = "MW"
weight = 2.0
base = 50
[layers.water]
rule = "none"
unit = "L/s"
"""


def test_layer_units_weights_bases_and_currency_are_read(tmp_path):
    s = read(tmp_path, toml=UNITS_TOML)
    assert s.units == {"power": "MW", "water": "L/s"}
    assert s.weights == {"power": 2.0}
    assert s.bases == {"power": 50.0}
    assert s.currency == "EUR"
    assert (s.layer_unit("power"), s.layer_weight("power"), s.layer_base("power")) == ("MW", 2.0, 50.0)
    # defaults for what is not set
    assert (s.layer_unit("gas"), s.layer_weight("water"), s.layer_base("water")) == ("", 1.0, 100.0)
    plain = read(tmp_path / "p")
    assert (plain.units, plain.weights, plain.bases, plain.currency) == ({}, {}, {}, None)


def test_layer_settings_survive_write_copy_and_networkx(tmp_path):
    s = read(tmp_path, toml=UNITS_TOML)
    write_system(s, tmp_path / "out")
    back = read_system(tmp_path / "out")
    assert (back.units, back.weights, back.bases, back.currency, back.rules) == \
        (s.units, s.weights, s.bases, s.currency, s.rules)
    c = s.copy()
    assert (c.units, c.weights, c.bases, c.currency) == (s.units, s.weights, s.bases, "EUR")
    c.units["power"] = "kW"
    assert s.units["power"] == "MW"   # a copy, not a view
    g = InfrastructureSystem.from_networkx({"power": nx.Graph([("a", "b")])}, units={"power": "MW"},
                                           weights={"power": 0}, bases={"power": 10}, currency="USD")
    assert (g.layer_unit("power"), g.layer_weight("power"), g.layer_base("power"), g.currency) == \
        ("MW", 0.0, 10.0, "USD")


@pytest.mark.parametrize("toml, words", [
    ("[layers.power]\nweight = -1", "layer 'power': weight must be >= 0"),
    ("[layers.power]\nweight = \"heavy\"", "layer 'power': weight must be a number"),
    ("[layers.power]\nweight = nan", "layer 'power': weight must be finite"),
    ("[layers.power]\nbase = 0", "layer 'power': base must be > 0"),
    ("[layers.power]\nbase = -100", "layer 'power': base must be > 0"),
    ("[layers.power]\nbase = true", "layer 'power': base must be a number"),
    ("[layers.power]\nunit = 3", "layer 'power': unit must be a string"),
    ("[system]\ncurrency = 1", "currency must be a string"),
    ("[layers.power]\nunits = \"MW\"", "unknown key 'units' in [layers.power]"),
])
def test_bad_layer_settings_are_one_line_errors(tmp_path, toml, words):
    with pytest.raises(InputError) as info:
        read(tmp_path, toml=toml)
    assert info.value.file.endswith("system.toml")
    assert words in str(info.value) and "\n" not in str(info.value)
    # the same checks for a system built in Python
    with pytest.raises(InputError):
        InfrastructureSystem.from_tables(pd.DataFrame({"id": ["a"], "layer": ["power"]}),
                                         weights={"power": -1}, bases={"power": 0})
