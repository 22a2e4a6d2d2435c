"""A geographic CRS gets a clear answer: hazards that measure distances and ``couple`` refuse it
with one line naming the fix, or work in the local UTM zone with ``--reproject``."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
from click.testing import CliRunner

from cascade import InfrastructureSystem, InputError, compile_system, load_scenario
from cascade.cli import cli
from cascade.couple import couple
from cascade.hazards import Draws

CASCADE = str(Path(sys.executable).parent / "cascade")
LON0, LAT0 = 8.40, 49.00            # Karlsruhe: UTM zone 32N


def town(crs):
    """The same small town in WGS 84 degrees (crs 'EPSG:4326') or UTM 32N metres."""
    rng = np.random.default_rng(1)
    lon = LON0 + rng.uniform(0, 0.05, 30)
    lat = LAT0 + rng.uniform(0, 0.04, 30)
    if crs != "EPSG:4326":
        x, y = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    else:
        x, y = lon, lat
    nodes = [{"id": f"s{i}", "layer": "power", "kind": "substation", "demand": 1.0, "x": x[i], "y": y[i]}
             for i in range(20)]
    nodes += [{"id": f"p{i}", "layer": "water", "kind": "pump", "demand": 1.0, "x": x[i], "y": y[i]}
              for i in range(20, 30)]
    edges = [{"id": f"l{i}", "source": f"s{i}", "target": f"s{i + 1}", "kind": "line"} for i in range(19)]
    edges += [{"id": f"w{i}", "source": f"p{i}", "target": f"p{i + 1}", "kind": "pipe"} for i in range(20, 29)]
    return InfrastructureSystem.from_tables(pd.DataFrame(nodes), pd.DataFrame(edges), crs=crs)


def quake_file(tmp_path, epicentre, extra=""):
    path = tmp_path / "q.toml"
    path.write_text(f"[scenario]\nseed = 3\n[hazard]\ntype = 'earthquake'\nepicenter = [{epicentre[0]}, {epicentre[1]}]\n"
                    f"magnitude = 6.5\n{extra}[hazard.fragility]\npump = 'EP.S.L.U'\n")
    return path


def test_geographic_crs_is_refused_with_the_fix(tmp_path):
    system = town("EPSG:4326")
    sc = load_scenario(quake_file(tmp_path, (LON0, LAT0)))
    with pytest.raises(InputError) as info:
        sc.prepare(system, compile_system(system))
    text = str(info.value)
    assert "geographic" in text and "--reproject" in text and "\n" not in text


def test_reprojected_earthquake_equals_the_same_town_in_utm(tmp_path):
    """Degrees + --reproject give the ground motion of the same town built in UTM 32N."""
    geo, utm = town("EPSG:4326"), town("EPSG:32632")
    ex, ey = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32632", always_xy=True).transform(LON0, LAT0)
    sc_geo = load_scenario(quake_file(tmp_path, (LON0, LAT0), "correlation = 'none'\n"), reproject=True)
    p_geo = sc_geo.prepare(geo, compile_system(geo))
    path = tmp_path / "utm"
    path.mkdir()
    sc_utm = load_scenario(quake_file(path, (ex, ey), "correlation = 'none'\n"))
    p_utm = sc_utm.prepare(utm, compile_system(utm))
    assert p_geo["elements"].crs == "EPSG:32632"
    assert p_geo["sn_z0"] == pytest.approx(p_utm["sn_z0"], abs=1e-6)
    assert p_geo["pe_ln_rr"] == pytest.approx(p_utm["pe_ln_rr"], abs=1e-6)
    for i in range(5):
        a = sc_geo.hazard.ground_motion(p_geo, Draws.of(3, i))[0]
        b = sc_utm.hazard.ground_motion(p_utm, Draws.of(3, i))[0]
        assert a == pytest.approx(b, abs=1e-6)


def test_region_circle_is_refused_but_a_polygon_is_not(tmp_path):
    system = town("EPSG:4326")
    c = compile_system(system)
    circle = tmp_path / "c.toml"
    circle.write_text(f"[scenario]\nseed = 1\n[hazard]\ntype = 'region'\ncenter = [{LON0}, {LAT0}]\nradius = 2000\n")
    with pytest.raises(InputError, match="region hazard measures distances"):
        load_scenario(circle).prepare(system, c)
    # --reproject: the radius is metres around the reprojected centre.
    sc = load_scenario(circle, reproject=True)
    sc.prepare(system, c)
    hit = {str(c.node_ids[i]) for i in sc.sample(c, 0)[0]}
    geod = pyproj.Geod(ellps="WGS84")
    lon, lat = system.nodes["x"].to_numpy(float), system.nodes["y"].to_numpy(float)
    dist = geod.inv(np.full(len(lon), LON0), np.full(len(lat), LAT0), lon, lat)[2]
    expected = {n for n, d in zip(system.nodes["id"], dist) if d <= 2000}
    clear = {n for n, d in zip(system.nodes["id"], dist) if abs(d - 2000) > 20}   # UTM scale error
    assert hit & clear == expected & clear and len(expected) > 0
    poly = tmp_path / "p.geojson"
    poly.write_text('{"type": "Polygon", "coordinates": [[[8.39, 48.99], [8.43, 48.99], [8.43, 49.02], [8.39, 48.99]]]}')
    ok = tmp_path / "ok.toml"
    ok.write_text("[scenario]\nseed = 1\n[hazard]\ntype = 'region'\npolygon = 'p.geojson'\n")
    load_scenario(ok).prepare(system, c)          # coordinates compared in the same CRS: fine


def test_random_and_table_hazards_do_not_care(tmp_path):
    system = town("EPSG:4326")
    c = compile_system(system)
    path = tmp_path / "r.toml"
    path.write_text("[scenario]\nseed = 1\n[hazard]\ntype = 'random'\nfraction = 0.5\n")
    load_scenario(path).prepare(system, c)


def test_couple_refuses_degrees_and_reprojects_on_request():
    system = town("EPSG:4326")
    with pytest.raises(InputError, match="cascade couple measures distances.*--reproject"):
        couple(system, "water:pump", "power", nearest=1)
    rows, stats = couple(system, "water:pump", "power", nearest=1, reproject=True)
    assert len(rows) == 10
    geod = pyproj.Geod(ellps="WGS84")
    xy = system.nodes.set_index("id")[["x", "y"]]
    for r in rows.itertuples():
        a, b = xy.loc[r.dependent], xy.loc[r.supplier]
        true = geod.inv(a.x, a.y, b.x, b.y)[2]
        assert r.distance == pytest.approx(true, rel=0.002)      # UTM scale factor < 0.1 %


def save(system, path: Path):
    path.mkdir()
    system.nodes.to_csv(path / "nodes.csv", index=False)
    system.edges.to_csv(path / "edges.csv", index=False)
    (path / "system.toml").write_text(f'[system]\nname = "geo"\ncrs = "{system.crs}"\n')
    return path


def test_cli_scenario_refuses_then_reprojects(tmp_path):
    d = save(town("EPSG:4326"), tmp_path / "geo")
    scen = quake_file(tmp_path, (LON0, LAT0))
    r = CliRunner().invoke(cli, ["scenario", str(d), str(scen), "-n", "5"])
    assert r.exit_code == 2
    lines = [line for line in r.output.strip().splitlines() if line]
    assert len(lines) == 1 and "--reproject" in lines[0] and "EPSG:4326" in lines[0]
    p = subprocess.run([CASCADE, "scenario", str(d), str(scen), "-n", "20", "--reproject", "--format", "json"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_cli_couple_refuses_then_reprojects(tmp_path):
    d = save(town("EPSG:4326"), tmp_path / "geo")
    p = subprocess.run([CASCADE, "couple", str(d), "--dependent", "water:pump", "--supplier", "power",
                        "--nearest", "1", "--dry-run"], capture_output=True, text=True)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "--reproject" in p.stderr
    p = subprocess.run([CASCADE, "couple", str(d), "--dependent", "water:pump", "--supplier", "power",
                        "--nearest", "1", "--dry-run", "--reproject"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    distances = [float(line.split(",")[-1]) for line in p.stdout.strip().splitlines()[1:]]
    assert len(distances) == 10 and max(distances) > 100       # metres, not degrees
    assert math.isfinite(sum(distances))
