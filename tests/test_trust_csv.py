"""CSV outputs and spreadsheet formulas: `--csv-safe` on every command that writes CSV
neutralises text cells a spreadsheet would run (= + - @, tab, CR), and `map`/`export --result`
read such files back to the same ids."""
from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from cascade.cli import cli
from cascade.io.csv_dir import FORMULA_START

from conftest import write_dir

EVIL = ["=HYPERLINK(\"http://x\")", "+1+2", "-3", "@SUM(A1)"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def csv_lines(rows) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


@pytest.fixture
def town(tmp_path):
    """Ids and layers that a spreadsheet would run, plus ids pandas would read as missing."""
    nodes = [["id", "layer", "kind", "demand", "x", "y"], ["PLANT", "power", "source", 0, 0, 0]]
    edges = [["id", "source", "target"]]
    prev = "PLANT"
    for k, ident in enumerate(EVIL + ["NA", "null"]):
        nodes.append([ident, "power", "", k + 1, k + 1, 0])
        edges.append([f"e{k}", prev, ident])
        prev = ident
    nodes += [["W0", "=water", "source", 0, 0, 5], ["W1", "=water", "", 3, 1, 5]]
    edges.append(["w", "W0", "W1"])
    root = write_dir(tmp_path / "town", csv_lines(nodes), csv_lines(edges), "dependent,supplier\nW0,+1+2")
    scen = tmp_path / "s.toml"
    scen.write_text('[scenario]\nname = "r"\nseed = 1\nsamples = 30\n\n[hazard]\ntype = "random"\n'
                    'elements = "all"\nfraction = 0.3\n')
    return root, scen


def cells(text: str) -> list[str]:
    return [c for row in csv.reader(io.StringIO(text)) for c in row]


def formula_cells(text: str) -> list[str]:
    return [c for c in cells(text) if c.startswith(FORMULA_START)]


def test_the_system_reads_with_those_ids(town):
    root, _ = town
    res = run("info", root, "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["nodes"] == 9


@pytest.mark.parametrize("command", [
    ["simulate", "{root}", "--fail", "PLANT", "--format", "csv"],
    ["critical", "{root}", "--format", "csv"],
    ["scenario", "{root}", "{scen}", "--format", "csv"],
    ["redundancy", "{root}", "--scenario", "{scen}", "--candidates", "{cands}", "--format", "csv", "--samples", "10"],
    ["couple", "{root}", "--dependent", "=water", "--supplier", "power", "--nearest", "1", "--dry-run"],
])
def test_csv_safe_leaves_no_formula_cell(town, command):
    root, scen = town
    cands = root.parent / "cands.csv"
    cands.write_text(csv_lines([["id", "type", "cost", "node", "hours"], ["=1+1", "backup", 5, "W0", 12]]))
    args = [str(a).replace("{root}", str(root)).replace("{scen}", str(scen)).replace("{cands}", str(cands))
            for a in command]
    plain = run(*args)
    assert plain.exit_code == 0, plain.output
    assert formula_cells(plain.stdout), "the plain CSV should carry the formula-like ids"
    safe = run(*args, "--csv-safe")
    assert safe.exit_code == 0, safe.output
    assert formula_cells(safe.stdout) == []
    assert any(c.startswith("'=") or c.startswith("'+") or c.startswith("'-") or c.startswith("'@")
               for c in cells(safe.stdout))
    # numbers are untouched: a negative number stays a number
    assert [c for c in cells(plain.stdout) if not c.startswith(FORMULA_START)] == \
        [c for c in cells(safe.stdout) if not c.startswith("'")]


@pytest.mark.parametrize("kind", ["simulate", "critical", "scenario"])
def test_safe_csv_reads_back_to_the_same_ids(town, tmp_path, kind):
    root, scen = town
    args = {"simulate": ["simulate", root, "--fail", "PLANT"], "critical": ["critical", root, "--top", "0"],
            "scenario": ["scenario", root, scen]}[kind]
    assert run(*args, "--format", "csv", "-o", tmp_path / "plain.csv").exit_code == 0
    assert run(*args, "--format", "csv", "--csv-safe", "-o", tmp_path / "safe.csv").exit_code == 0
    out = {}
    for name in ("plain", "safe"):
        res = run("export", root, "--result", tmp_path / f"{name}.csv", "-o", tmp_path / f"{name}.geojson")
        assert res.exit_code == 0, res.output
        out[name] = json.loads((tmp_path / f"{name}.geojson").read_text())
        assert run("map", root, "--result", tmp_path / f"{name}.csv", "-o", tmp_path / f"{name}.png").exit_code == 0
    assert out["plain"] == out["safe"]
    props = {f["properties"]["id"]: f["properties"] for f in out["safe"]["features"] if f["properties"]["feature"] == "node"}
    column = {"simulate": "result_round" if "result_round" in props["NA"] else "round",
              "critical": "rank", "scenario": "p_fail"}[kind]
    for ident in EVIL + ["NA", "null"]:  # every id found its row, 'NA' and 'null' included
        assert props[ident].get(column) is not None or kind == "simulate", (ident, props[ident])
    if kind == "simulate":  # every node downstream of the plant failed in round >= 1
        assert all(props[i]["round"] >= 1 for i in EVIL + ["NA", "null"]), props
