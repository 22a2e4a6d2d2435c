"""Importing a pandapower or pandapipes file someone else wrote never runs code from it.

pandapower's ``from_json`` restores any ``{"_module": ..., "_class": ..., "_object": ...}`` by
importing the module and calling the class with the object: ``os.system`` with a shell command
runs that command.  cascade reads these files as data (cascade.io.ppjson)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

pp = pytest.importorskip("pandapower")

from cascade import InputError  # noqa: E402
from cascade.cli import cli  # noqa: E402
from cascade.io.pandapower import read_pandapower  # noqa: E402
from cascade.io.ppjson import allowed, read_net  # noqa: E402

CASCADE = Path(sys.executable).parent / "cascade"


def payload(marker: Path) -> dict:
    return {"_module": "os", "_class": "system", "_object": f"touch {marker}"}


def small_grid():
    net = pp.create_empty_network()
    b = [pp.create_bus(net, 10.0, name=f"b{i}") for i in range(3)]
    pp.create_ext_grid(net, b[0])
    pp.create_line(net, b[0], b[1], 1.0, "NAYY 4x50 SE")
    pp.create_line(net, b[1], b[2], 1.0, "NAYY 4x50 SE")
    pp.create_load(net, b[2], p_mw=0.4)
    return net


def evil_files(tmp_path, marker):
    """The same grid with the payload in three places pandapower's hook restores."""
    pp.to_json(small_grid(), str(tmp_path / "clean.json"))
    clean = json.loads((tmp_path / "clean.json").read_text())
    files = {}
    top = json.loads(json.dumps(clean))
    top["_object"]["evil"] = payload(marker)  # a top-level entry
    files["entry"] = top
    cell = json.loads(json.dumps(clean))
    bus = json.loads(cell["_object"]["bus"]["_object"])
    bus["data"][0][bus["columns"].index("name")] = payload(marker)  # a cell of an object column
    cell["_object"]["bus"]["_object"] = json.dumps(bus)
    files["cell"] = cell
    nested = json.loads(json.dumps(clean))  # inside an object pandapower builds, in a plain dict
    nested["_object"]["std_types"]["line"]["x"] = {"r": payload(marker)}
    files["std_types"] = nested
    out = {}
    for where, data in files.items():
        out[where] = tmp_path / f"evil-{where}.json"
        out[where].write_text(json.dumps(data))
    return out


def pandapower_refuses() -> bool:
    return hasattr(pp.io_utils, "_is_safe_to_deserialize")


@pytest.mark.parametrize("where", ["entry", "cell", "std_types"])
def test_pandapower_from_json_runs_the_payload_but_cascade_import_does_not(tmp_path, where):
    marker = tmp_path / "pwned"
    path = evil_files(tmp_path, marker)[where]
    if not pandapower_refuses():  # the installed pandapower (3.3.3 here) runs it ...
        subprocess.run([sys.executable, "-c", f"import pandapower as pp; pp.from_json({str(path)!r})"],
                       capture_output=True, timeout=300)
        assert marker.exists(), "pandapower's own reader should have run the command"
        marker.unlink()
    # ... cascade, as a user runs it, does not: one line, exit 2, no system written
    proc = subprocess.run([str(CASCADE), "import", "pandapower", str(path), "--layer", "power",
                           "--into", str(tmp_path / "sys")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "refused" in lines[0] and "os.system" in lines[0], proc.stderr
    assert str(path) in lines[0]
    assert not marker.exists()
    assert not (tmp_path / "sys").exists()
    res = CliRunner().invoke(cli, ["import", "pandapower", str(path), "--layer", "power",
                                   "--into", str(tmp_path / "sys2")])
    assert res.exit_code == 2 and not marker.exists()


def test_the_clean_file_still_imports(tmp_path):
    files = evil_files(tmp_path, tmp_path / "pwned")
    assert files
    layer = read_pandapower(tmp_path / "clean.json", prefix="")
    assert sorted(layer.nodes["id"]) == ["bus-0", "bus-1", "bus-2"]
    assert layer.nodes.set_index("id").loc["bus-2", "demand"] == pytest.approx(0.4)
    assert list(layer.nodes["name"]) == ["b0", "b1", "b2"]


def test_pandapipes_payload_inside_the_fluid_is_refused(tmp_path):
    ppi = pytest.importorskip("pandapipes")
    pnw = pytest.importorskip("pandapipes.networks")
    from cascade.io.pandapipes import read_pandapipes

    marker = tmp_path / "pwned"
    ppi.to_json(pnw.gas_versatility(), str(tmp_path / "gas.json"))
    data = json.loads((tmp_path / "gas.json").read_text())
    fluid = json.loads(data["_object"]["fluid"]["_object"])
    fluid["all_properties"]["density"] = payload(marker)
    data["_object"]["fluid"]["_object"] = json.dumps(fluid)
    (tmp_path / "evil.json").write_text(json.dumps(data))
    if not hasattr(ppi.io.io_utils if hasattr(ppi, "io") else object(), "_is_safe_to_deserialize"):
        subprocess.run([sys.executable, "-c", f"import pandapipes; pandapipes.from_json({str(tmp_path / 'evil.json')!r})"],
                       capture_output=True, timeout=300)
        if marker.exists():  # pandapipes 0.16 runs it
            marker.unlink()
    with pytest.raises(InputError, match="refused.*os.system"):
        read_pandapipes(tmp_path / "evil.json")
    assert not marker.exists()
    layer = read_pandapipes(tmp_path / "gas.json")  # the clean file reads
    assert len(layer.nodes) == len(ppi.from_json(str(tmp_path / "gas.json")).junction)


@pytest.mark.parametrize("module,cls,ok", [
    ("pandas.core.frame", "DataFrame", True), ("numpy", "int64", True), ("numpy", "array", True),
    ("builtins", "tuple", True), ("pandapower.control.controller.const_control", "ConstControl", True),
    ("os", "system", False), ("builtins", "eval", False), ("builtins", "exec", False),
    ("subprocess", "Popen", False), ("numpy", "load", False), ("pandas", "read_pickle", False),
    ("numpy", "frombuffer", False), ("pandapowerx", "y", False),
])
def test_allow_list(module, cls, ok):
    assert allowed(module, cls) is ok


def test_no_module_is_imported_while_reading(tmp_path):
    """Even an allowed pair is never imported: a module that does not exist reads fine."""
    pp.to_json(small_grid(), str(tmp_path / "clean.json"))
    data = json.loads((tmp_path / "clean.json").read_text())
    data["_object"]["controller_x"] = {"_module": "pandapower.no_such_module", "_class": "X", "_object": "{}"}
    (tmp_path / "net.json").write_text(json.dumps(data))
    net = read_net(tmp_path / "net.json", "pandapower")
    assert "pandapower.no_such_module" not in sys.modules
    assert repr(net["controller_x"]) == "<pandapower.no_such_module.X, not loaded>"
