"""`cascade recover` as a user runs it (CliRunner and a real process)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cascade.cli import cli

from conftest import DEMO, write_dir

CASCADE = Path(sys.executable).parent / "cascade"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def cells(tmp_path):
    """Power feeds a substation; a cell site runs 4 h on its battery when the substation fails."""
    return write_dir(
        tmp_path / "cells",
        """id,layer,kind,demand,repair_time,repair_cost
           plant,power,source,0,10,500
           sub,power,substation,10,6,50
           sub2,power,substation,20,2,20
           core,communication,source,0,1,
           cell,communication,cell,30,,""",
        """source,target,directed
           plant,sub,true
           plant,sub2,true
           core,cell,true""",
        """dependent,supplier,group,delay
           cell,sub,,4""")


def test_json_shape_for_one_strategy(cells):
    res = run("recover", cells, "--fail", "sub", "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert list(data) == ["strategy", "crews", "resilience_loss", "restoration_time", "time_to_90",
                          "peak_loss", "schedule", "curve", "repair_cost", "repairs_done", "units"]
    assert data["units"]["time"] == data["units"]["resilience_loss"] == "hours"
    assert data["units"]["repair_cost"] is None            # no [system] currency
    assert data["strategy"] == "greedy"
    assert data["crews"] == {"communication": 1, "power": 1}
    assert data["schedule"] == [{"id": "sub", "crew": "power-1", "start": 0.0, "finish": 6.0}]
    # Q: 50/60 (sub lost, cell on battery), 20/60 after 4 h, 1 after 6 h.
    assert data["curve"] == [[0.0, pytest.approx(50 / 60)], [4.0, pytest.approx(20 / 60)], [6.0, 1.0]]
    assert data["resilience_loss"] == pytest.approx(4 * 10 / 60 + 2 * 40 / 60)
    assert data["restoration_time"] == 6.0 and data["time_to_90"] == 6.0
    assert data["peak_loss"] == pytest.approx(40 / 60)


def test_several_strategies_give_a_list_and_a_table(cells):
    args = ["recover", cells, "-f", "sub", "-f", "sub2", "-f", "plant",
            "-s", "greedy", "-s", "random", "-s", "optimal", "-s", "critical"]
    res = run(*args, "--format", "json", "--seed", "3")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [d["strategy"] for d in data] == ["greedy", "random", "optimal", "critical"]
    losses = {d["strategy"]: d["resilience_loss"] for d in data}
    assert losses["optimal"] <= min(losses.values()) + 1e-9
    for d in data:
        assert sorted(r["id"] for r in d["schedule"]) == ["plant", "sub", "sub2"]
        assert d["curve"][-1][1] == 1.0
    table = run(*args)
    assert table.exit_code == 0, table.output
    out = table.stdout
    assert "resilience loss (h)" in out and "Repair order (optimal):" in out
    assert "Service of all layers over time (weighted mean of the layers):" in out
    for strategy in ("greedy", "random", "optimal", "critical"):
        assert f"\n{strategy} " in out


def test_table_shows_order_curve_and_cost(cells):
    res = run("recover", cells, "--fail", "sub", "--fail", "plant", "--crews", "power=2")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "crews per layer: communication 1, power 2" in out
    assert "Repair order (greedy):" in out and "power-2" in out
    assert "Service over time (greedy; 'all' is the weighted mean of the layers):" in out
    assert "communication" in out
    assert "550" in out          # repair cost 500 + 50
    assert "repair cost (no currency)" in out and "resilience loss (h)" in out
    assert "demands in different units are never added" in out


def test_fail_file_output_and_plot(cells, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# storm damage\nsub\nplant->sub2\n")
    out, png = tmp_path / "r.json", tmp_path / "curves.png"
    res = run("recover", cells, "--fail-file", ids, "--format", "json", "-o", out,
              "--plot", png, "-s", "greedy", "-s", "random")
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert {r["id"] for r in data[0]["schedule"]} == {"sub", "plant->sub2"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize("args, message", [
    (["--fail", "nope"], "unknown node or edge id 'nope'"),
    (["--fail", "sub", "--crews", "power=0"], "--crews: need at least one crew for layer 'power'"),
    (["--fail", "sub", "--crews", "gas=2"], "--crews: unknown layer 'gas'"),
    (["--fail", "sub", "--crews", "two"], "--crews: 'two' is not a whole number"),
    (["--fail", "sub", "--strategy", "fastest"], "unknown strategy 'fastest'"),
    ([], "nothing to repair"),
    (["--fail", "sub", "--plot", "curves.txt"], "--plot: use a .png"),
])
def test_bad_input_exits_2_with_one_line(cells, tmp_path, args, message):
    out = tmp_path / "out.json"
    res = run("recover", cells, *args, "--output", out)
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and message in res.stderr, res.stderr
    assert res.stdout == ""
    assert not out.exists()


def test_optimal_too_big_exits_2_and_writes_nothing(tmp_path):
    homes = "\n".join(f"h{i},power,,1,1" for i in range(9))
    system = write_dir(tmp_path / "homes", "id,layer,kind,demand,repair_time\nplant,power,source,0,1\n" + homes,
                       "source,target\n" + "\n".join(f"plant,h{i}" for i in range(9)))
    out, png = tmp_path / "out.json", tmp_path / "p.png"
    args = ["recover", system, "-s", "greedy", "-s", "optimal", "--plot", png, "-o", out]
    res = run(*args, *sum((["-f", f"h{i}"] for i in range(9)), []))
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1
    assert "optimal: 9 failed elements give 9! = 362,880 repair orders per layer, above the limit " \
        "8! = 40,320" in res.stderr
    assert not out.exists() and not png.exists()
    # Eight are searched.
    res = run(*args, *sum((["-f", f"h{i}"] for i in range(8)), []))
    assert res.exit_code == 0, res.output


def test_real_process(cells, tmp_path):
    png = tmp_path / "c.png"
    proc = subprocess.run([str(CASCADE), "recover", str(cells), "--fail", "sub", "--fail", "sub2",
                           "-s", "greedy", "-s", "critical", "--format", "json", "--plot", str(png)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [d["strategy"] for d in data] == ["greedy", "critical"]
    assert png.exists()
    bad = subprocess.run([str(CASCADE), "recover", str(cells), "--fail", "sub", "--crews", "x=1"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stdout == "" and bad.stderr.count("\n") == 1 and "unknown layer 'x'" in bad.stderr


@pytest.mark.skipif(not (DEMO / "nodes.csv").exists(), reason="the demo town is not built")
def test_demo_town(tmp_path):
    fail = ["P-SUB-T03", "W-PS-01", "C-AGG-01"]
    res = run("recover", DEMO, *sum((["--fail", x] for x in fail), []), "--crews", "2",
              "-s", "greedy", "-s", "critical", "-s", "optimal", "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    optimal = data[2]["resilience_loss"]
    assert all(optimal <= d["resilience_loss"] + 1e-9 for d in data)
    assert all(d["curve"][-1][1] == pytest.approx(data[0]["curve"][-1][1]) for d in data)


def test_currency_labels_the_repair_cost(cells):
    (cells / "system.toml").write_text('[system]\nname = "cells"\ncurrency = "EUR"\n')
    res = CliRunner().invoke(cli, ["recover", str(cells), "--fail", "sub"])
    assert res.exit_code == 0, res.output
    assert "repair cost (EUR)" in res.stdout
    res = CliRunner().invoke(cli, ["recover", str(cells), "--fail", "sub", "--format", "json"])
    assert json.loads(res.stdout)["units"]["repair_cost"] == "EUR"
    res = CliRunner().invoke(cli, ["recover", str(cells), "--fail", "sub", "--seed", "-1"])
    assert res.exit_code == 2 and "Traceback" not in res.output
