"""Write ``shakemap_m62_grid.xml``: the M6.2 scenario's median ground motion as a ShakeMap grid.

Not a USGS product: a grid in the real ``grid.xml`` format (ShakeMap 4 field set plus
STDPGV) over the demo town, filled from the same point source as ``earthquake_m62.toml``
(Boore, Joyner & Fumal 1997, Mw 6.2, epicentre (12000, -2000) m in EPSG:32650, Vs30 620 m/s)
so the two scenarios can be compared.  PSA03 = 2.0 x PGA and PSA30 = 0.3 x PSA10 are rough
spectral-shape stand-ins, and MMI = 3.66 log10(PGA in cm/s²) - 1.66 (Wald et al. 1999,
Earthquake Spectra 15(3), 557-564); none of the three is used by the demo scenarios.

Run from the repository root: ``python scenarios/make_shakemap_grid.py``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyproj

from cascade.hazards import BJF97, bjf97_ln, pgv_from_sa1

HERE = Path(__file__).resolve().parent
EPICENTRE, MAGNITUDE, VS30, CRS = (12000.0, -2000.0), 6.2, 620.0, "EPSG:32650"
SPACING = 1.0 / 120.0                       # 30 arc-seconds, ShakeMap's usual spacing


def main():
    to_geo = pyproj.Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    corners = np.array([[-1500, -1500], [11500, -1500], [-1500, 9500], [11500, 9500]], float)
    lon_c, lat_c = to_geo.transform(corners[:, 0], corners[:, 1])
    lon0 = math.floor(min(lon_c) / SPACING) * SPACING
    lat0 = math.floor(min(lat_c) / SPACING) * SPACING
    nlon = int(math.ceil((max(lon_c) - lon0) / SPACING)) + 1
    nlat = int(math.ceil((max(lat_c) - lat0) / SPACING)) + 1
    lons = lon0 + SPACING * np.arange(nlon)
    lats = lat0 + SPACING * np.arange(nlat)
    rows = []
    for lat in lats[::-1]:                   # ShakeMap order: north to south, west to east
        lon = lons
        x, y = to_utm.transform(lon, np.full(nlon, lat))
        d = np.hypot(x - EPICENTRE[0], y - EPICENTRE[1]) / 1000.0
        pga = np.exp(bjf97_ln("pga", MAGNITUDE, d, VS30))
        sa1 = np.exp(bjf97_ln("sa1", MAGNITUDE, d, VS30))
        pgv = pgv_from_sa1(sa1)
        mmi = np.clip(3.66 * np.log10(pga * 980.665) - 1.66, 1.0, 10.0)
        std_pga = math.hypot(BJF97["pga"]["sig_r"], BJF97["pga"]["sig_e"])
        std_pgv = math.hypot(BJF97["sa1"]["sig_r"], BJF97["sa1"]["sig_e"])
        for k in range(nlon):
            rows.append(f"{lon[k]:.4f} {lat:.4f} {100 * pga[k]:.4f} {pgv[k]:.4f} {mmi[k]:.2f} "
                        f"{200 * pga[k]:.4f} {100 * sa1[k]:.4f} {30 * sa1[k]:.4f} "
                        f"{std_pga:.4f} {std_pgv:.4f} 0.00 {VS30:.1f}")
    fields = [("LON", "dd"), ("LAT", "dd"), ("PGA", "pctg"), ("PGV", "cms"), ("MMI", "intensity"),
              ("PSA03", "pctg"), ("PSA10", "pctg"), ("PSA30", "pctg"), ("STDPGA", "ln(g)"),
              ("STDPGV", "ln(cm/s)"), ("URAT", ""), ("SVEL", "ms")]
    epi_lon, epi_lat = to_geo.transform(*EPICENTRE)
    text = ['<?xml version="1.0" encoding="US-ASCII" standalone="yes"?>',
            "<!-- Not a USGS product: the demo town's M6.2 scenario (Boore, Joyner & Fumal 1997 "
            "medians) in the ShakeMap grid.xml format; written by scenarios/make_shakemap_grid.py -->",
            '<shakemap_grid xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns="http://earthquake.usgs.gov/eqcenter/shakemap" '
            'xsi:schemaLocation="http://earthquake.usgs.gov http://earthquake.usgs.gov/eqcenter/shakemap/xml/schemas/shakemap.xsd" '
            'event_id="demo_m62" shakemap_id="demo_m62" shakemap_version="1" code_version="4.0 demo" '
            'process_timestamp="2026-01-01T00:00:00Z" shakemap_originator="cascade" map_status="RELEASED" '
            'shakemap_event_type="SCENARIO">',
            f'<event event_id="demo_m62" magnitude="{MAGNITUDE}" depth="10.0" lat="{epi_lat:.6f}" '
            f'lon="{epi_lon:.6f}" event_timestamp="2026-01-01T00:00:00Z" event_network="cascade" '
            'event_description="Demo town M6.2 scenario" />',
            f'<grid_specification lon_min="{lons[0]:.4f}" lat_min="{lats[0]:.4f}" lon_max="{lons[-1]:.4f}" '
            f'lat_max="{lats[-1]:.4f}" nominal_lon_spacing="{SPACING:.6f}" nominal_lat_spacing="{SPACING:.6f}" '
            f'nlon="{nlon}" nlat="{nlat}" />',
            '<event_specific_uncertainty name="pga" value="0.0" numsta="0" />',
            '<event_specific_uncertainty name="pgv" value="0.0" numsta="0" />']
    text += [f'<grid_field index="{i + 1}" name="{n}" units="{u}" />' for i, (n, u) in enumerate(fields)]
    text += ["<grid_data>"] + rows + ["</grid_data>", "</shakemap_grid>", ""]
    (HERE / "shakemap_m62_grid.xml").write_text("\n".join(text), encoding="ascii")
    print(f"wrote {nlon} x {nlat} grid")


if __name__ == "__main__":
    main()
