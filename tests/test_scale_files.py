"""From files to ranking at scale (issue 15, item 3): the pyarrow CSV reader against pandas,
the numpy ranking order against pandas' sort, the compiled-system cache (hits equal misses,
invalidated by any change, safe to delete, never fatal, no partial entries under concurrent
runs), the Parquet system format and ``cascade convert``."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cascade import compile_system, read_system
from cascade import cache as cache_mod
from cascade.cli import cli
from cascade.criticality import ranking_order, synthetic_lifelines
from cascade.errors import InputError
from cascade.io import csv_dir
from cascade.io.csv_dir import PY_SPACE, _read_csv, _read_csv_arrow, write_system

from conftest import DEMO, write_dir

CASCADE = Path(sys.executable).parent / "cascade"


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def pandas_read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                       encoding="utf-8-sig", index_col=False)


def assert_same_system(a, b):
    for t in ("nodes", "edges", "dependencies"):
        pd.testing.assert_frame_equal(getattr(a, t), getattr(b, t))
    assert (a.name, a.crs, a.rules, a.units, a.weights, a.bases, a.currency) == \
           (b.name, b.crs, b.rules, b.units, b.weights, b.bases, b.currency)


def assert_same_compiled(a, b):
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, f.name
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f.name
        else:
            assert x == y, f.name


# ------------------------------------------------------------------ the reader

def test_py_space_is_what_str_strip_removes():
    assert PY_SPACE == "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


TEXTS = {
    "plain": "id,layer,demand\na,power,1\nb,water,2.5\n",
    "no final newline": "id,layer,demand\na,power,1\nb,water,2",
    "bom and crlf": "\ufeffid,layer,demand\r\na,power,1\r\nb,water,2\r\n",
    "spaces": "id, layer ,demand\n a ,  power,1 \nb,water\u00a0,\u3000 2\n",
    "quotes": 'id,layer,demand\n"a,1",power,1\n"b""q",water,"2"\n',
    "NA words stay text": "id,layer,demand\nNA,null,\nnan,N/A,\n",
    "unicode": "id,layer,demand\nß-1,Wasser,1\n水,水,2\n",
    "empty cells": "id,layer,demand\na,,\n,b,\n",
}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_fast_reader_reads_what_pandas_reads(tmp_path, name):
    path = tmp_path / "t.csv"
    path.write_bytes(TEXTS[name].encode("utf-8"))
    fast = _read_csv_arrow(path, strip=False)
    assert fast is not None, "a regular file takes the fast path"
    pd.testing.assert_frame_equal(fast, pandas_read(path), check_dtype=False)


@pytest.mark.parametrize("text", [
    "id,layer\n\na,power\n",                       # blank line: lines differ from rows + 2
    "id,layer\n  \t\na,power\n",                  # a line of spaces
    "id,layer\r\n\r\na,power\r\n",                 # a blank line, CRLF
    'id,layer\n"a\nb",power\n',                   # a quoted field over two lines
    'id,layer\na, "power, x"\n',                  # space before a quote (skipinitialspace)
    "id,layer\na,power,extra\n",                  # a long row
    "id,layer\na\n",                              # a short row
    "id,id\na,b\n",                               # a column twice
    "",                                           # empty
    "id,layer\na,\xff\n",                         # not UTF-8
])
def test_irregular_files_take_the_careful_path(tmp_path, text):
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode("latin-1") if "\xff" in text else text.encode())
    assert _read_csv_arrow(path, strip=False) is None


def test_read_system_equals_the_pandas_path(tmp_path, monkeypatch):
    system = synthetic_lifelines(3000, seed=4)
    write_system(system, tmp_path / "s")
    fast = read_system(tmp_path / "s")
    monkeypatch.setattr(csv_dir, "_read_csv_arrow", lambda *a, **k: None)
    slow = read_system(tmp_path / "s")
    assert_same_system(fast, slow)
    assert_same_compiled(compile_system(fast), compile_system(slow))


def test_errors_after_a_blank_line_still_name_the_file_line(tmp_path):
    root = write_dir(tmp_path / "s", "id,layer\na,power\nb,power", "source,target\na,b")
    (root / "edges.csv").write_text("source,target\na,b\n\n\na,ghost\n")
    with pytest.raises(InputError) as err:
        read_system(root)
    assert err.value.line == 5 and str(err.value.file).endswith("edges.csv")
    assert "ghost" in str(err.value)
    # The same row without blank lines: line 3 (fast path, row + 2).
    (root / "edges.csv").write_text("source,target\na,b\na,ghost\n")
    with pytest.raises(InputError) as err:
        read_system(root)
    assert err.value.line == 3


def test_edge_ends_share_the_node_ids_strings(tmp_path):
    write_system(synthetic_lifelines(2000, seed=1), tmp_path / "s")
    system = read_system(tmp_path / "s")
    ids = system.nodes["id"].to_numpy(dtype=object)
    where = pd.Index(ids).get_indexer(system.edges["source"].to_numpy(dtype=object))
    assert all(a is b for a, b in zip(system.edges["source"], ids[where]))




# Bad inputs that the fast path's one lookup of every node name meets (the ids repeated, an edge
# end, a dependent or a supplier that is not a node, an id with spaces around it); each must
# give the very message of the careful (pandas) path, naming the file and the line.
BAD_NAMES = {
    "node id twice": ("id,layer\na,power\nb,power\na,power\n", "source,target\na,b\n", None),
    "node id twice, spaces": ("id,layer\na,power\nb,power\n a ,power\n", "source,target\na,b\n", None),
    "unknown source": ("id,layer\na,power\nb,power\n", "id,source,target\ne1,a,b\ne2,ghost,b\n", None),
    "unknown target": ("id,layer\na,power\nb,power\n", "source,target\na,b\nb,ghost\n", None),
    "unknown supplier": ("id,layer\na,power\nb,water\n", "source,target\n",
                         "dependent,supplier\nb,a\nb,ghost\n"),
    "unknown dependent": ("id,layer\na,power\nb,water\n", "source,target\n",
                          "dependent,supplier\nghost,a\n"),
    "edge id twice": ("id,layer\na,power\nb,power\n", "id,source,target\ne,a,b\ne,b,a\n", None),
}


@pytest.mark.parametrize("name", sorted(BAD_NAMES))
def test_one_lookup_of_every_node_name_keeps_each_error_message(tmp_path, monkeypatch, name):
    nodes, edges, deps = BAD_NAMES[name]
    root = write_dir(tmp_path / "s", nodes.rstrip("\n"), edges.rstrip("\n"),
                     deps.rstrip("\n") if deps else None)
    with pytest.raises(InputError) as fast:
        read_system(root)
    monkeypatch.setattr(csv_dir, "_read_csv_arrow", lambda *a, **k: None)
    with pytest.raises(InputError) as slow:
        read_system(root)
    assert str(fast.value) == str(slow.value)
    assert fast.value.line is not None and str(fast.value.file).endswith(".csv")


def test_the_reader_proves_node_ids_unique_only_when_they_are(tmp_path):
    root = write_dir(tmp_path / "s", "id,layer\na,power\nb,power", "source,target\na,b")
    raw = [csv_dir._read_csv(root / f"{t}.csv", required=True, strip=True, raw=True)
           for t in ("nodes", "edges")]
    assert all(isinstance(r, csv_dir._Raw) for r in raw), "regular files take the fast path"
    nodes, edges, _ = csv_dir._finish_tables(*raw, None)
    assert nodes.attrs.get("unique_ids") is True
    assert list(edges.attrs["node_positions"]) == ["source", "target"]
    (root / "nodes.csv").write_text("id,layer\na,power\nb,power\na,power\n")
    raw = [csv_dir._read_csv(root / f"{t}.csv", required=True, strip=True, raw=True)
           for t in ("nodes", "edges")]
    nodes, _, _ = csv_dir._finish_tables(*raw, None)
    assert "unique_ids" not in nodes.attrs


@pytest.mark.parametrize("ids, unique", [("e1,e2,e3", True), ("e1,e2,e1", False), ("e1,,e3", False),
                                         (",,", False), ("e1,b->c,", False)])
def test_the_reader_proves_edge_ids_given_and_unique_only_when_they_are(tmp_path, ids, unique):
    edge_ids = ids.split(",")
    root = write_dir(tmp_path / "s", "id,layer\na,power\nb,power\nc,power",
                     "id,source,target\n" + "\n".join(f"{e},{s},{t}" for e, (s, t) in
                                                      zip(edge_ids, [("a", "b"), ("a", "c"), ("b", "c")])))
    raw = [csv_dir._read_csv(root / f"{t}.csv", required=True, strip=True, raw=True)
           for t in ("nodes", "edges")]
    assert all(isinstance(r, csv_dir._Raw) for r in raw), "regular files take the fast path"
    _, edges, _ = csv_dir._finish_tables(*raw, None)
    assert edges.attrs.get("unique_ids", False) is unique
    # Whichever way, read_system's answer (or error) is that of the pandas path.
    result = run("--no-cache", "info", root)
    if len(set(e or f"{s}->{t}" for e, (s, t) in zip(edge_ids, [("a", "b"), ("a", "c"), ("b", "c")]))) == 3:
        assert result.exit_code == 0, result.output
        s = read_system(root)
        assert s.edges["id"].tolist() == [e or f"{s_}->{t}" for e, (s_, t) in
                                          zip(edge_ids, [("a", "b"), ("a", "c"), ("b", "c")])]
    else:
        assert result.exit_code == 2
        assert "duplicate edge id" in result.output.strip().splitlines()[-1]
def test_same_cells_compares_pointers_then_text():
    from cascade.system import same_cells

    a = np.array(["ab", "c", "d"], object)
    b = np.array(["".join(["a", "b"]), "c", "d"], object)   # equal text, another object
    assert b[0] is not a[0] and same_cells(a, b) and same_cells(a, a.copy())
    b[2] = "e"
    assert not same_cells(a, b) and not same_cells(a, a[:2])
    assert same_cells(np.zeros(0, object), np.zeros(0, object))
    assert same_cells(a[::2], np.array(["ab", "d"], object))          # not contiguous
    assert same_cells(np.arange(3), np.arange(3)) and not same_cells(np.arange(3), np.ones(3))


FLOW_FIELDS = {"supply": 0.0, "dispatch": np.nan, "edge_capacity": np.inf, "edge_reactance": np.nan,
               "edge_shift": 0.0, "sup_threshold": 1.0}


def test_flow_arrays_of_a_system_without_flow_layers_take_no_memory_per_element(tmp_path):
    c = compile_system(synthetic_lifelines(2000, seed=2))
    for field, value in FLOW_FIELDS.items():
        array = getattr(c, field)
        size = {"supply": c.n_nodes, "dispatch": c.n_nodes, "sup_threshold": len(c.sup_idx)}
        assert array.dtype == np.float64 and len(array) == size.get(field, c.n_edges)
        assert array.strides == (0,) and not array.flags.writeable, field
        assert np.array_equal(array, np.full(len(array), value), equal_nan=True), field
    # With a flow layer they are whole arrays (the flow kernels take contiguous buffers).
    root = write_dir(tmp_path / "f", "id,layer,kind,supply,demand\ng,p,source,5,0\nb,p,,0,2\nx,q,,0,0",
                     "source,target\ng,b", "dependent,supplier\nx,b", toml='[layers.p]\nrule = "flow"')
    c = compile_system(read_system(root))
    for field in FLOW_FIELDS:
        assert getattr(c, field).flags.c_contiguous and getattr(c, field).strides != (0,), field



def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd is Linux only (np.full elsewhere)")
def test_a_column_of_nan_takes_memory_only_where_it_is_used():
    from cascade.system import nan_column

    n = 10_000_000   # 80 MB
    before = _rss_mb()
    a, b = nan_column(n), nan_column(n)
    assert _rss_mb() - before < 20
    assert a.dtype == np.float64 and a.shape == (n,) and a.flags.writeable
    a[:1000] = 1.0     # a write is private to that column (copy on write)
    b[-5:] = 2.0
    assert np.isnan(a[1000:]).all() and (a[:1000] == 1.0).all()
    assert np.isnan(b[:-5]).all() and (b[-5:] == 2.0).all()
    assert np.isnan(nan_column(n)).all()   # a later column is NaN again


def test_default_columns_are_nan_columns_that_behave_like_filled_ones(tmp_path, monkeypatch):
    from cascade import system as system_mod

    root = tmp_path / "s"
    write_system(synthetic_lifelines(3000, seed=4), root)
    monkeypatch.setattr(system_mod, "NAN_MAP_MIN_BYTES", 1 << 62)   # np.full everywhere
    filled = read_system(root)
    monkeypatch.setattr(system_mod, "NAN_MAP_MIN_BYTES", 0)
    mapped = read_system(root)
    assert_same_system(mapped, filled)
    assert list(mapped.nodes.columns) == ["id", "layer", "kind", "demand", "x", "y", "repair_time",
                                          "repair_cost"]
    assert_same_compiled(compile_system(mapped), compile_system(filled))
    # Writable, one column at a time, in place or through a copy.
    mapped.nodes.loc[mapped.nodes.index[:2], "x"] = 5.0
    mapped.edges.iloc[0, mapped.edges.columns.get_loc("capacity")] = 7.0
    assert mapped.nodes["x"].iloc[:2].tolist() == [5.0, 5.0] and mapped.nodes["x"].iloc[2:].isna().all()
    assert mapped.nodes["y"].isna().all() and mapped.edges["length"].isna().all()
    assert mapped.edges["capacity"].iloc[0] == 7.0 and mapped.edges["capacity"].iloc[1:].isna().all()
    again = read_system(root)
    assert again.nodes["x"].isna().all() and again.edges["capacity"].isna().all()
    import pickle

    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(mapped.nodes)), mapped.nodes)


def test_sums_of_repair_columns_are_checked_in_whichever_file_has_them(tmp_path):
    root = write_dir(tmp_path / "e", "id,layer,kind\np,power,source\na,power,\nb,power,",
                     "source,target,repair_time\np,a,1e308\na,b,1e308")
    result = run("--no-cache", "info", root)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        f"error: {root / 'nodes.csv'} and {root / 'edges.csv'}: the 'repair_time' values add up "
        "to more than the largest number (about 1.8e308); write them in a larger unit")



def test_the_first_bad_file_in_file_order_is_named(tmp_path):
    """Each file names its own error, the first bad file in file order."""
    root = tmp_path / "r"
    root.mkdir()
    (root / "edges.csv").write_bytes(b"source,target\np,\xfe\n")
    (root / "dependencies.csv").write_bytes(b"dependent,supplier\n\xfd,p\n")
    for nodes, bad in ((b"id,layer\np,power\n\xff,power\n", "nodes.csv"),
                       (b"id,layer\np,power\n", "edges.csv")):
        (root / "nodes.csv").write_bytes(nodes)
        for _ in range(3):
            result = run("--no-cache", "info", root)
            assert result.exit_code == 2
            assert result.output.strip().splitlines()[-1] == f"error: {root / bad}: not UTF-8 text"



@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("seed", range(4))
def test_csr_of_the_compiler_is_a_stable_argsort(dtype, seed):
    from cascade.compiled import _csr

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 50))
    keys = rng.integers(0, n, int(rng.integers(0, 500)))
    indptr, order = _csr(keys, n, dtype)
    assert order.dtype == dtype and indptr.dtype == dtype
    assert np.array_equal(order, np.argsort(keys, kind="stable"))
    assert np.array_equal(indptr, np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n))]))
    with pytest.raises(ValueError):
        _csr(np.append(keys, n), n, dtype)


# ------------------------------------------------------------------ the ranking order

def test_ranking_order_is_pandas_sort_values():
    rng = np.random.default_rng(3)
    k = 5000
    score = rng.choice([0.0, 0.25, 0.5, 1.0, np.nan], k)
    lost = rng.integers(0, 4, k)
    ids = rng.choice(["a", "b", "B", "ä", "a b", "z", "水", "10", "9"], k).astype(object)
    ids = np.array([f"{i}{rng.integers(0, 30)}" for i in ids], object)
    element = rng.choice(["node", "edge"], k).astype(object)
    table = pd.DataFrame({"score": score, "nodes_lost": lost, "id": ids, "element": element})
    expected = table.sort_values(["score", "nodes_lost", "id", "element"],
                                 ascending=[False, False, True, True], kind="mergesort")
    got = table.take(ranking_order(score, lost, ids, element))
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))


@pytest.mark.parametrize("top", [1, 2, 7, 50, 2999, 3000, 5000])
def test_the_head_of_a_ranking_is_the_top_of_its_whole_table(top):
    # Many ties in score and nodes lost (the partition's threshold falls inside a tie), ids that
    # order differently as text and as numbers, NaN scores: head(k) must be frame()[:k].
    from cascade.criticality import Ranking

    system = synthetic_lifelines(3000, seed=4)
    c = compile_system(system)
    rng = np.random.default_rng(top)
    k, L = 3000, len(c.layer_names)
    el_node = np.arange(k)
    layer_lost = rng.integers(0, 2, (k, L))
    layer_demand = layer_lost * rng.choice([0.0, 1.0, 2.0], (k, L))
    layer_demand[rng.integers(0, k, 5), 0] = np.nan
    ranking = Ranking(system, c, el_node, np.full(k, -1), layer_lost.sum(1), layer_demand.sum(1),
                      layer_lost, layer_demand)
    whole = ranking.frame()
    expected = pd.DataFrame({"score": ranking.score, "nodes_lost": layer_lost.sum(1),
                             "id": c.node_ids, "element": "node"}).sort_values(
        ["score", "nodes_lost", "id", "element"], ascending=[False, False, True, True],
        kind="mergesort")
    assert whole["id"].tolist() == expected["id"].tolist()
    pd.testing.assert_frame_equal(ranking.head(top), whole.iloc[:top])
    assert len(ranking) == k


def test_the_ranking_scores_in_blocks_bit_for_bit_as_in_one_piece():
    from cascade.criticality import Ranking
    from cascade.units import score

    system = synthetic_lifelines(2000, seed=1)
    c = compile_system(system)
    rng = np.random.default_rng(0)
    k, L = 150_000, len(c.layer_names)   # more than two blocks of 2^16 rows
    lost = rng.integers(0, 50, (k, L))
    demand = rng.random((k, L)) * rng.integers(0, 3, (k, L)) * 37.3
    ranking = Ranking(system, c, np.arange(k) % 2000, np.full(k, -1), lost.sum(1), demand.sum(1),
                      lost, demand)
    whole = score(system, c, demand, lost)
    assert np.array_equal(ranking.score.view(np.int64), whole.view(np.int64))


def test_critical_prints_the_same_top_from_the_head_as_from_the_whole_table(life):
    # The table's top 20 comes from Ranking.head; with --top 0 the whole table is built.
    head = run("critical", life, "--no-compare", "--threads", 1)
    whole = run("critical", life, "--no-compare", "--threads", 1, "--top", 0)
    assert head.exit_code == whole.exit_code == 0
    # (column widths follow the rows shown: compare the cells)
    rows = lambda out: [line.split() for line in out.splitlines()[6:] if line.strip()]  # noqa: E731
    assert rows(head.output)[:20] == rows(whole.output)[:20]
    assert "(top 20 of 3000; --top 0 lists all)" in head.output
    csv_top = run("critical", life, "--format", "csv", "--top", 5)
    csv_all = run("critical", life, "--format", "csv")
    assert csv_top.output.splitlines() == csv_all.output.splitlines()[:6]


# ------------------------------------------------------------------ the cache

def cache_entries(root: Path) -> list[Path]:
    """The entries of a system's cache (one directory of .npy files each)."""
    folder = root / cache_mod.CACHE_DIR
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


@pytest.fixture
def life(tmp_path):
    root = tmp_path / "life"
    write_system(synthetic_lifelines(3000, seed=2), root)
    return root


def test_a_hit_gives_what_the_files_give(life):
    entries = lambda: cache_entries(life)  # noqa: E731
    s1, c1 = cache_mod.load(life)
    assert len(entries()) == 1
    s2, c2 = cache_mod.load(life)
    fresh = read_system(life)
    assert_same_system(s2, fresh)
    assert_same_compiled(c2, compile_system(fresh))
    assert_same_compiled(c1, c2)
    # Plain arrays: numpy reads the entry without pickles.
    files = sorted(entries()[0].glob("*.npy"))
    assert files and all(np.load(f, allow_pickle=False).dtype != object for f in files)


@pytest.mark.parametrize("mapped", [False, True])
def test_columns_the_files_left_out_are_stored_as_their_kind_alone(life, monkeypatch, mapped):
    from cascade import system as system_mod

    # Mapped (see nan_column) from any size on, or never: the hit equals the files either way.
    monkeypatch.setattr(system_mod, "NAN_MAP_MIN_BYTES", 0 if mapped else 1 << 62)
    cache_mod.load(life)
    s, c = cache_mod.load(life)
    fresh = read_system(life)
    assert_same_system(s, fresh)
    assert_same_compiled(c, compile_system(fresh))
    entry = cache_entries(life)[0]
    stored = {f.name for f in entry.glob("nodes.*.npy")}
    x = list(fresh.nodes.columns).index("x")
    assert (f"nodes.{x}.npy" in stored) is not mapped
    s.nodes.loc[s.nodes.index[:1], "x"] = 3.0   # writable, that column alone
    assert s.nodes["x"].iloc[0] == 3.0 and s.nodes["x"].iloc[1:].isna().all() and s.nodes["y"].isna().all()


def test_a_hit_maps_the_arrays_and_never_writes_back(life):
    cache_mod.load(life)
    entry = cache_entries(life)[0]
    before = {f.name: f.read_bytes() for f in entry.glob("*.npy")}
    system, compiled = cache_mod.load(life)

    def mapped(a):
        while a is not None:
            if isinstance(a, np.memmap) or isinstance(getattr(a, "base", None), __import__("mmap").mmap):
                return True
            a = getattr(a, "base", None)
        return False

    assert mapped(compiled.adj_ptr) and mapped(compiled.demand)
    compiled.demand[:] = -1.0                      # copy on write: the file keeps its bytes
    assert {f.name: f.read_bytes() for f in entry.glob("*.npy")} == before
    assert_same_compiled(cache_mod.load(life)[1], compile_system(read_system(life)))


def test_critical_imports_neither_scipy_nor_matplotlib():
    code = ("import sys; import cascade.commands.critical, cascade.cache; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'matplotlib', 'networkx'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_any_change_to_a_file_is_a_new_entry(life):
    cache_mod.load(life)
    first = cache_entries(life)
    nodes = pd.read_csv(life / "nodes.csv", dtype=str, keep_default_na=False)
    nodes.loc[5, "demand"] = "123.5"
    nodes.to_csv(life / "nodes.csv", index=False)
    system, compiled = cache_mod.load(life)
    assert float(system.nodes.loc[5, "demand"]) == 123.5 and compiled.demand[5] == 123.5
    second = cache_entries(life)
    assert len(second) == 1 and second != first      # the old entry is gone
    (life / "system.toml").write_text('[system]\nname = "renamed"\n\n[layers.transport]\nrule = "giant"\n')
    assert cache_mod.load(life)[0].name == "renamed"


def test_deleting_or_damaging_the_cache_is_harmless(life):
    expected = cache_mod.load(life)
    import shutil
    shutil.rmtree(life / cache_mod.CACHE_DIR)
    assert_same_compiled(cache_mod.load(life)[1], expected[1])
    entry = cache_entries(life)[0]
    biggest = max(entry.glob("*.npy"), key=lambda f: f.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[:1000])            # truncated
    system, compiled = cache_mod.load(life)
    assert_same_system(system, expected[0])
    assert_same_compiled(compiled, expected[1])
    next(cache_entries(life)[0].glob("*.npy")).unlink()       # a file of the entry gone
    system, compiled = cache_mod.load(life)
    assert_same_system(system, expected[0])
    assert_same_compiled(compiled, expected[1])
    assert len(cache_entries(life)) == 1


def test_the_cache_can_be_turned_off(life, monkeypatch):
    cache_mod.load(life, cache=False)
    assert not (life / cache_mod.CACHE_DIR).exists()
    monkeypatch.setenv("CASCADE_CACHE", "0")
    cache_mod.load(life)
    assert not (life / cache_mod.CACHE_DIR).exists()
    monkeypatch.delenv("CASCADE_CACHE")
    res = run("--no-cache", "info", life)
    assert res.exit_code == 0, res.output
    assert not (life / cache_mod.CACHE_DIR).exists()
    res = run("info", life)
    assert res.exit_code == 0 and (life / cache_mod.CACHE_DIR).exists()


def test_a_read_only_directory_gets_no_cache_and_no_error(life):
    if os.geteuid() == 0:
        # root writes anyway: make the cache path a file instead, which mkdir cannot replace
        (life / cache_mod.CACHE_DIR).write_text("not a directory")
    else:
        life.chmod(0o555)
    try:
        system, compiled = cache_mod.load(life)
        assert_same_system(system, read_system(life))
    finally:
        life.chmod(0o755)


def test_bad_input_is_never_cached(life):
    (life / "edges.csv").write_text((life / "edges.csv").read_text() + "x,P-0,GHOST\n")
    for _ in range(2):
        res = run("critical", life, "--no-compare")
        assert res.exit_code == 2 and "GHOST" in res.output and "edges.csv, line" in res.output
    assert not cache_entries(life)


def test_critical_answers_the_same_from_the_cache(life):
    cold = run("--no-cache", "critical", life, "--format", "csv")
    first = run("critical", life, "--format", "csv")
    hit = run("critical", life, "--format", "csv")
    assert cold.exit_code == first.exit_code == hit.exit_code == 0
    assert cold.output == first.output == hit.output
    assert len(cold.output.splitlines()) == 3001


def test_concurrent_runs_leave_one_whole_entry(life):
    code = ("import sys; from cascade.cache import load; s, c = load(sys.argv[1]); "
            "print(len(s.nodes), int(c.adj_ptr[-1]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(life)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert len({o for o, _ in outs}) == 1
    folder = life / cache_mod.CACHE_DIR
    assert len(cache_entries(life)) == 1 and not list(folder.glob(".*"))
    assert_same_compiled(cache_mod.load(life)[1], compile_system(read_system(life)))


# ------------------------------------------------------------------ Parquet and convert

def test_parquet_round_trip_through_convert(tmp_path):
    res = run("convert", DEMO, tmp_path / "pq")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "pq").iterdir()) == \
        ["dependencies.parquet", "edges.parquet", "nodes.parquet", "system.toml"]
    res = run("convert", tmp_path / "pq", tmp_path / "back")
    assert res.exit_code == 0, res.output
    original = read_system(DEMO)
    for path in (tmp_path / "pq", tmp_path / "back"):
        assert_same_system(read_system(path), original)
    # Every command reads either format, with the same answers.
    a = run("critical", DEMO, "--format", "csv", "--no-compare")
    b = run("critical", tmp_path / "pq", "--format", "csv", "--no-compare")
    assert a.exit_code == b.exit_code == 0 and a.output == b.output


def test_parquet_errors_name_the_file_and_row(tmp_path):
    system = read_system(DEMO)
    write_system(system, tmp_path / "pq", format="parquet")
    edges = pd.read_parquet(tmp_path / "pq" / "edges.parquet")
    edges.loc[3, "target"] = "GHOST"
    edges.to_parquet(tmp_path / "pq" / "edges.parquet", index=False)
    res = run("info", tmp_path / "pq")
    assert res.exit_code == 2
    assert res.output.strip().endswith("edges.parquet, row 4: edge '" + edges.loc[3, "id"]
                                       + "' names unknown node 'GHOST'")
    (tmp_path / "pq" / "nodes.parquet").write_bytes(b"not parquet")
    res = run("info", tmp_path / "pq")
    assert res.exit_code == 2 and "nodes.parquet" in res.output and "Parquet" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_convert_refuses_mixed_formats_and_a_used_output(tmp_path):
    root = tmp_path / "mixed"
    write_system(read_system(DEMO), root)
    write_system(read_system(DEMO), tmp_path / "pq", format="parquet")
    (root / "nodes.parquet").write_bytes((tmp_path / "pq" / "nodes.parquet").read_bytes())
    res = run("info", root)
    assert res.exit_code == 2 and "both nodes.csv and nodes.parquet" in res.output
    res = run("convert", DEMO, tmp_path / "pq")
    assert res.exit_code == 2 and "not an empty directory" in res.output


def test_convert_as_a_real_process(tmp_path):
    proc = subprocess.run([str(CASCADE), "convert", str(DEMO), str(tmp_path / "pq"), "--to", "parquet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("wrote ") and "4,506 nodes" in proc.stderr
    bad = subprocess.run([str(CASCADE), "convert", str(tmp_path / "nowhere"), str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr and not (tmp_path / "x").exists()
