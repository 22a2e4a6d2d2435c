"""ShakeMap grid.xml: reading the real format safely, bilinear interpolation, the earthquake
hazard on a ShakeMap (medians and STD columns), the bundled demo file, and bad files."""
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
from scipy.special import ndtr

from cascade import InfrastructureSystem, InputError, compile_system, load_scenario
from cascade.cli import cli
from cascade.hazards import Draws
from cascade.shakemap import read_grid_xml

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "scenarios" / "shakemap_m62_grid.xml"
UTM = "EPSG:32650"
CASCADE = str(Path(sys.executable).parent / "cascade")


def grid_xml(lon0=113.0, lat0=22.0, nlon=5, nlat=4, d=0.01, pga=None, std=True, extra=""):
    """A small grid.xml in the ShakeMap layout; PGA (%g) = pga(lon, lat), default linear."""
    pga = pga or (lambda lo, la: 20.0 + 100.0 * (lo - lon0) + 300.0 * (la - lat0))
    names = ["LON", "LAT", "PGA", "PGV", "MMI"] + (["STDPGA", "STDPGV"] if std else [])
    units = ["dd", "dd", "pctg", "cms", "intensity", "ln(g)", "ln(cm/s)"]
    rows = []
    for j in range(nlat - 1, -1, -1):            # north first, as ShakeMap writes
        for i in range(nlon):
            lo, la = lon0 + i * d, lat0 + j * d
            vals = [lo, la, pga(lo, la), 10.0 + 50.0 * (lo - lon0), 6.0] + ([0.5, 0.6] if std else [])
            rows.append(" ".join(f"{v:.4f}" for v in vals))
    fields = "\n".join(f'<grid_field index="{k + 1}" name="{n}" units="{units[k]}" />' for k, n in enumerate(names))
    return (f'<?xml version="1.0" encoding="US-ASCII" standalone="yes"?>\n{extra}'
            '<shakemap_grid xmlns="http://earthquake.usgs.gov/eqcenter/shakemap" event_id="t">\n'
            '<event event_id="t" magnitude="6.0" lat="22.0" lon="113.0" />\n'
            f'<grid_specification lon_min="{lon0:.4f}" lat_min="{lat0:.4f}" lon_max="{lon0 + (nlon - 1) * d:.4f}" '
            f'lat_max="{lat0 + (nlat - 1) * d:.4f}" nominal_lon_spacing="{d}" nominal_lat_spacing="{d}" '
            f'nlon="{nlon}" nlat="{nlat}" />\n{fields}\n<grid_data>\n' + "\n".join(rows)
            + "\n</grid_data>\n</shakemap_grid>\n")


def test_reads_fields_and_interpolates_bilinearly(tmp_path):
    path = tmp_path / "grid.xml"
    path.write_text(grid_xml())
    g = read_grid_xml(path)
    assert set(g.fields) == {"PGA", "PGV", "MMI", "STDPGA", "STDPGV"}
    assert g.fields["PGA"].shape == (4, 5)
    # A field linear in lon and lat is reproduced exactly by bilinear interpolation.
    lon = np.array([113.0, 113.013, 113.037, 113.04])
    lat = np.array([22.0, 22.021, 22.005, 22.03])
    expected = 20.0 + 100.0 * (lon - 113.0) + 300.0 * (lat - 22.0)
    assert g.interpolate("PGA", lon, lat) == pytest.approx(expected, abs=1e-3)
    assert np.isnan(g.interpolate("PGA", np.array([112.99]), np.array([22.01])))[0]


def test_bilinear_is_not_nearest_on_a_curved_field(tmp_path):
    path = tmp_path / "grid.xml"
    path.write_text(grid_xml(pga=lambda lo, la: 10.0 + 1e4 * (lo - 113.0) * (la - 22.0)))
    g = read_grid_xml(path)
    # Inside one cell, bilinear reproduces x*y exactly too.
    assert g.interpolate("PGA", np.array([113.015]), np.array([22.005]))[0] == \
        pytest.approx(10.0 + 1e4 * 0.015 * 0.005, abs=1e-3)


@pytest.mark.parametrize("extra, message", [
    ('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>\n', "DOCTYPE or ENTITY"),
])
def test_entity_declarations_are_refused(tmp_path, extra, message):
    path = tmp_path / "grid.xml"
    path.write_text(grid_xml(extra=extra))
    with pytest.raises(InputError, match=message):
        read_grid_xml(path)


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.replace("shakemap_grid", "other_root"), "root element"),
    (lambda t: t.replace('nlon="5"', 'nlon="6"'), "expected nlon x nlat"),
    (lambda t: t.split("<grid_data>")[0] + "</shakemap_grid>", "missing <grid_data>"),
    (lambda t: t.replace('name="LAT"', 'name="LATX"'), "no grid_field named LAT"),
    (lambda t: t.replace("</grid_data>", "oops</grid_data>"), "must be numbers|expected"),
    (lambda t: t[: len(t) // 2], "malformed XML"),
])
def test_bad_files_are_one_line_errors(tmp_path, mutate, message):
    path = tmp_path / "grid.xml"
    path.write_text(mutate(grid_xml()))
    with pytest.raises(InputError, match=message) as info:
        read_grid_xml(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def utm_system(points, crs=UTM):
    """Nodes at (lon, lat) points, stored in UTM 50N; a far plant without fragility."""
    t = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    nodes = []
    for k, (lo, la) in enumerate(points):
        x, y = t.transform(lo, la)
        nodes.append({"id": f"n{k}", "layer": "power", "kind": "sub", "x": x, "y": y})
    px, py = t.transform(113.02, 22.01)
    nodes.append({"id": "plant", "layer": "power", "kind": "source", "x": px, "y": py})
    return InfrastructureSystem.from_tables(pd.DataFrame(nodes), crs=crs)


def test_earthquake_on_a_shakemap_uses_the_interpolated_median(tmp_path):
    """variability = false: P(fail) = Φ(ln(PGA(site) / median) / β) with PGA from the grid."""
    (tmp_path / "grid.xml").write_text(grid_xml())
    sites = [(113.005, 22.005), (113.031, 22.022)] * 40
    system = utm_system(sites)
    c = compile_system(system)
    (tmp_path / "s.toml").write_text(
        "[scenario]\nseed = 1\n[hazard]\ntype = 'earthquake'\nshakemap = 'grid.xml'\nvariability = false\n"
        "[hazard.fragility]\nsub = { median = 0.3, beta = 0.6 }\n'power:source' = false\n")
    sc = load_scenario(tmp_path / "s.toml")
    sc.prepare(system, c)
    samples = 60
    hits = np.zeros(c.n_nodes)
    for i in range(samples):
        hits[sc.sample(c, i)[0]] += 1
    for lo, la, idx in ((113.005, 22.005, slice(0, 80, 2)), (113.031, 22.022, slice(1, 80, 2))):
        pga = (20.0 + 100.0 * (lo - 113.0) + 300.0 * (la - 22.0)) / 100.0
        p = float(ndtr(math.log(pga / 0.3) / 0.6))
        n = 40 * samples
        assert abs(hits[idx].sum() / n - p) < 4 * math.sqrt(p * (1 - p) / n) + 0.005


def test_shakemap_std_sets_the_sampled_spread(tmp_path):
    (tmp_path / "grid.xml").write_text(grid_xml())
    system = utm_system([(113.01, 22.01)])
    c = compile_system(system)
    (tmp_path / "s.toml").write_text("[scenario]\nseed = 1\n[hazard]\ntype = 'earthquake'\n"
                                     "shakemap = 'grid.xml'\ncorrelation = 'none'\n")
    sc = load_scenario(tmp_path / "s.toml")
    prep = sc.prepare(system, c)
    ln = np.array([sc.hazard.ground_motion(prep, Draws.of(1, i))[0][0] for i in range(1500)])
    assert ln.std() == pytest.approx(0.5, rel=0.08)              # STDPGA
    assert ln.mean() == pytest.approx(math.log((20.0 + 1.0 + 3.0) / 100.0), abs=0.05)


def test_assets_outside_the_grid_are_an_error(tmp_path):
    (tmp_path / "grid.xml").write_text(grid_xml())
    system = utm_system([(114.5, 22.01)])
    c = compile_system(system)
    (tmp_path / "s.toml").write_text("[scenario]\nseed = 1\n[hazard]\ntype = 'earthquake'\nshakemap = 'grid.xml'\n"
                                     "[hazard.fragility]\nsub = 'EP.S.L.A'\n")
    sc = load_scenario(tmp_path / "s.toml")
    with pytest.raises(InputError, match="outside the ShakeMap grid"):
        sc.prepare(system, c)


def test_shakemap_and_epicentre_do_not_mix(tmp_path):
    (tmp_path / "grid.xml").write_text(grid_xml())
    (tmp_path / "s.toml").write_text("[scenario]\nseed = 1\n[hazard]\ntype = 'earthquake'\n"
                                     "shakemap = 'grid.xml'\nmagnitude = 6.0\n")
    with pytest.raises(InputError, match="hazard.magnitude"):
        load_scenario(tmp_path / "s.toml")


def test_bundled_shakemap_covers_the_demo_town_and_matches_its_point_source():
    from cascade import read_system
    from cascade.hazards import bjf97_ln

    g = read_grid_xml(BUNDLED)
    assert {"PGA", "PGV", "MMI", "PSA03", "PSA10", "PSA30", "STDPGA", "STDPGV"} <= set(g.fields)
    system = read_system(ROOT / "networks" / "demo_town")
    t = pyproj.Transformer.from_crs(system.crs, "EPSG:4326", always_xy=True)
    lon, lat = t.transform(system.nodes["x"].to_numpy(float), system.nodes["y"].to_numpy(float))
    pga = g.interpolate("PGA", lon, lat) / 100.0
    assert np.isfinite(pga).all()
    # The file holds the M6.2 scenario's BJF97 medians: interpolation error only (< 3 %).
    d = np.hypot(system.nodes["x"] - 12000.0, system.nodes["y"] + 2000.0) / 1000.0
    assert pga == pytest.approx(np.exp(bjf97_ln("pga", 6.2, d, 620.0)), rel=0.03)


def test_shakemap_scenario_runs_through_the_cli_as_a_user_runs_it():
    out = subprocess.run([CASCADE, "scenario", str(ROOT / "networks" / "demo_town"),
                          str(ROOT / "scenarios" / "earthquake_shakemap.toml"), "-n", "40", "--threads", "1",
                          "--format", "json"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    import json

    data = json.loads(out.stdout)
    assert data["scenario"]["hazard"]["shakemap"] == "shakemap_m62_grid.xml"
    assert data["direct_failures_mean"]["nodes"] > 0


def test_bad_shakemap_through_the_cli_is_exit_2_and_one_line(tmp_path):
    (tmp_path / "grid.xml").write_text(grid_xml(extra='<!DOCTYPE x [<!ENTITY a "b">]>\n'))
    (tmp_path / "s.toml").write_text("[scenario]\nseed = 1\n[hazard]\ntype = 'earthquake'\nshakemap = 'grid.xml'\n")
    result = CliRunner().invoke(cli, ["scenario", str(ROOT / "networks" / "demo_town"), str(tmp_path / "s.toml")])
    assert result.exit_code == 2
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and "DOCTYPE" in lines[0] and "grid.xml" in lines[0]
