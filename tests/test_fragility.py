"""Hazus lifeline fragility classes (cascade/fragility.py) and their use by the demo scenarios.

The spot-check numbers below were read off the source named in cascade/fragility.py
(rccosta1/R3, R3_Source/Networks/Models/Water/*.cpp and Fuel/RFuelTankFarmModel.cpp, citing
Hazus-MH 2.1 pages 398, 399 and 394), not computed from the module under test.
"""
from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cascade import compile_system, read_system
from cascade.fragility import (BRIDGE_CLASSES, CLASS_MEASURE, DESCRIPTIONS, FACILITY_CLASSES,
                               GAS_CLASSES, WATER_CLASSES)
from cascade.hazards import DAMAGE_STATES, HAZUS_CLASSES, load_scenario

ROOT = Path(__file__).resolve().parent.parent
CASCADE = str(Path(sys.executable).with_name("cascade"))   # the console script, as a user runs it
DEMO_QUAKES = ("earthquake_m62.toml", "earthquake_shakemap.toml")


@pytest.mark.parametrize("name", sorted(HAZUS_CLASSES))
def test_every_class_is_a_valid_lognormal(name):
    states = HAZUS_CLASSES[name]
    assert len(states) == len(DAMAGE_STATES) == 4
    medians = [m for m, _ in states]
    assert all(m > 0 and math.isfinite(m) for m in medians)
    assert all(0 < b < 2 for _, b in states)
    # Hazus bridges repeat a median across states (HWB11, HWB15, ...); nothing decreases.
    assert medians == sorted(medians)


@pytest.mark.parametrize("name", sorted(WATER_CLASSES) + sorted(GAS_CLASSES))
def test_water_medians_increase_strictly_and_use_pga(name):
    medians = [m for m, _ in FACILITY_CLASSES[name]]
    assert all(a < b for a, b in zip(medians, medians[1:]))
    assert CLASS_MEASURE.get(name, "PGA") == "PGA"
    assert name in DESCRIPTIONS


def test_facility_classes_are_registered_once():
    assert set(FACILITY_CLASSES) == set(BRIDGE_CLASSES) | set(WATER_CLASSES) | set(GAS_CLASSES)
    assert not set(BRIDGE_CLASSES) & set(WATER_CLASSES)
    assert not (set(BRIDGE_CLASSES) | set(WATER_CLASSES)) & set(GAS_CLASSES)
    assert set(FACILITY_CLASSES) <= set(HAZUS_CLASSES)
    assert not {"EP.S.L.A", "EP.G.ML.A"} & set(FACILITY_CLASSES)   # power stays in hazards.py
    assert len(WATER_CLASSES) == 15 and len(GAS_CLASSES) == 2


@pytest.mark.parametrize("name, state, median, beta", [
    ("PWT1", "slight", 0.25, 0.50),       # RWaterTreatmentFacilityModel.cpp, "pg. 398"
    ("PWT3", "complete", 1.28, 0.50),
    ("PWT6", "moderate", 0.35, 0.40),
    ("PPP1", "extensive", 0.66, 0.65),    # RWaterPumpStationModel.cpp, "pg. 399"
    ("PPP3", "slight", 0.15, 0.75),
    ("PPP4", "complete", 1.50, 0.80),
    ("PWE1", "moderate", 0.36, 0.65),     # CIGRA WaterComSeismicFragilityParams.xlsx, "WL"
    ("PWE1", "extensive", 0.72, 0.65),
    ("NGC1", "moderate", 0.34, 0.65),     # CIGRA GasComSeismicFragilityParams.xlsx, "CSA"
    ("NGC2", "slight", 0.12, 0.60),       # "CSU"
    ("PST.G.C.A", "complete", 1.64, 0.70),   # RFuelTankFarmModel.cpp, "pg. 394"
    ("PST.G.S.U", "moderate", 0.35, 0.75),
])
def test_spot_check_against_the_source(name, state, median, beta):
    assert HAZUS_CLASSES[name][DAMAGE_STATES.index(state)] == (median, beta)


def test_left_out_classes_are_unknown(tmp_path):
    """Classes without a checkable source are not invented: a scenario naming one is refused."""
    for name in ("WWL1", "CCO1", "PST.A.S", "PST.B.C"):
        assert name not in HAZUS_CLASSES
    path = tmp_path / "s.toml"
    path.write_text("[scenario]\nseed = 1\n[hazard]\ntype = 'earthquake'\nepicenter = [0.0, 0.0]\n"
                    "magnitude = 6.0\n[hazard.fragility]\nregulator = 'CCO1'\n")
    from cascade import InputError
    with pytest.raises(InputError, match="unknown Hazus class 'CCO1'"):
        load_scenario(path)


@pytest.mark.parametrize("name", DEMO_QUAKES)
def test_demo_earthquakes_use_the_water_classes_and_no_stand_in(name):
    path = ROOT / "scenarios" / name
    text = path.read_text()
    assert "stand-in" not in text.lower()
    sc = load_scenario(path)
    frag = sc.hazard.fragility
    assert (frag["pump"], frag["water:source"], frag["tank"], frag["bridge"]) == \
        ("PPP1", "PWT1", "PST.G.C.A", "HWB28")
    # No electric-power curve is lent to another lifeline's kind any more.
    for key, entry in frag.items():
        if isinstance(entry, str) and entry.startswith("EP."):
            assert key in ("substation", "distribution", "feeder", "power:source"), key

    system = read_system(ROOT / "networks" / "demo_town")
    c = compile_system(system)
    prep = sc.prepare(system, c)
    ext = DAMAGE_STATES.index("extensive")       # the demo's out-of-service state
    for node, cls in (("W-PS-01", "PPP1"), ("W-TP-2", "PWT1")):
        i = int(c.node_index([node])[0])
        assert (prep["median"][i], prep["beta"][i]) == HAZUS_CLASSES[cls][ext]
    tanks = [i for i, (layer, kind) in enumerate(zip(system.nodes["layer"], system.nodes["kind"]))
             if (layer, kind) == ("water", "tank")]
    assert tanks and all(prep["median"][i] == 0.95 for i in tanks)   # PST.G.C.A extensive


def test_shipped_earthquake_scenario_runs_from_the_command_line():
    out = subprocess.run(
        [CASCADE, "scenario", str(ROOT / "networks" / "demo_town"),
         str(ROOT / "scenarios" / "earthquake_m62.toml"), "-n", "30", "--threads", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "Service loss" in out.stdout
    match = re.search(r"fails ([0-9.]+) node\(s\)", out.stdout)
    assert match and float(match.group(1)) > 0
