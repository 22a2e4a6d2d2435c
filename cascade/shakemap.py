"""USGS ShakeMap ``grid.xml``: read it safely and interpolate its fields to assets.

The format (ShakeMap 3.5 and 4, "grid.xml" product of an event page): a ``shakemap_grid``
root with an ``event`` element, a ``grid_specification`` (``lon_min``, ``lat_min``,
``lon_max``, ``lat_max``, ``nominal_lon_spacing``, ``nominal_lat_spacing``, ``nlon``,
``nlat``), one ``grid_field`` per column (``index`` from 1, ``name`` such as LON, LAT, PGA,
PGV, MMI, PSA03, PSA10, PSA30, STDPGA, STDPGV, ..., ``units``) and ``grid_data``: whitespace
separated rows of those columns, one per grid point (any order; rows are placed by their
LON/LAT).  Units: PGA and PSAxx in %g (``pctg``), PGV in cm/s, STDxx the standard deviation
of the natural log of the measure (``ln(pctg)``, ``ln(g)`` or ``ln(cm/s)``: the same number).

The file is parsed with :mod:`xml.etree.ElementTree` after refusing any ``<!DOCTYPE`` or
``<!ENTITY`` declaration (a grid.xml has none), so no entity expansion ("billion laughs")
and no external entities can happen.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, reading

#: ShakeMap measures usable as ground motion: name -> (unit factor to g or cm/s).
MEASURES = {"PGA": 0.01, "PGV": 1.0, "PSA03": 0.01, "PSA10": 0.01, "PSA30": 0.01}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass
class ShakeMapGrid:
    """A ShakeMap grid: ``lon`` (nlon,), ``lat`` (nlat,) ascending, and ``fields`` name ->
    (nlat, nlon) arrays in the file's units; ``units`` name -> unit string; ``event``: the
    event element's attributes."""

    lon: np.ndarray
    lat: np.ndarray
    fields: dict
    units: dict
    event: dict
    path: str = ""

    def interpolate(self, name: str, lon, lat) -> np.ndarray:
        """Bilinear interpolation of field ``name`` at points; NaN outside the grid."""
        v = self.fields[name]
        lon, lat = np.asarray(lon, float), np.asarray(lat, float)
        fx = (lon - self.lon[0]) / (self.lon[-1] - self.lon[0]) * (len(self.lon) - 1)
        fy = (lat - self.lat[0]) / (self.lat[-1] - self.lat[0]) * (len(self.lat) - 1)
        inside = (fx >= 0) & (fx <= len(self.lon) - 1) & (fy >= 0) & (fy <= len(self.lat) - 1)
        i = np.clip(np.floor(fx).astype(np.int64), 0, len(self.lon) - 2)
        j = np.clip(np.floor(fy).astype(np.int64), 0, len(self.lat) - 2)
        tx, ty = fx - i, fy - j
        out = (v[j, i] * (1 - tx) * (1 - ty) + v[j, i + 1] * tx * (1 - ty)
               + v[j + 1, i] * (1 - tx) * ty + v[j + 1, i + 1] * tx * ty)
        return np.where(inside, out, np.nan)


def read_grid_xml(path: "str | Path") -> ShakeMapGrid:
    """Read a ShakeMap ``grid.xml``; any problem is an :class:`InputError` naming the file."""
    path = Path(path)
    file = str(path)
    with reading(path, "ShakeMap file"):
        raw = path.read_bytes()
    if re.search(r"<!(DOCTYPE|ENTITY)", raw.decode("utf-8", "replace"), re.IGNORECASE):
        raise InputError("XML with a DOCTYPE or ENTITY declaration is refused (a ShakeMap "
                         "grid.xml has none)", file)
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise InputError(f"malformed XML: {' '.join(str(exc).split())}", file, line) from None
    if _local(root.tag) != "shakemap_grid":
        raise InputError(f"not a ShakeMap grid.xml: the root element is <{_local(root.tag)}>, "
                         "not <shakemap_grid>", file)
    spec, event, data, fields = None, {}, None, {}
    for child in root:
        tag = _local(child.tag)
        if tag == "grid_specification":
            spec = child.attrib
        elif tag == "event":
            event = dict(child.attrib)
        elif tag == "grid_field":
            try:
                index = int(child.attrib["index"])
                fields[index] = (child.attrib["name"].upper(), child.attrib.get("units", ""))
            except (KeyError, ValueError):
                raise InputError("a <grid_field> needs an integer 'index' and a 'name'", file) from None
        elif tag == "grid_data":
            data = child.text or ""
    if spec is None:
        raise InputError("missing <grid_specification>", file)
    if data is None:
        raise InputError("missing <grid_data>", file)
    if sorted(fields) != list(range(1, len(fields) + 1)):
        raise InputError("grid_field indices must be 1, 2, ... without gaps", file)
    names = [fields[i][0] for i in sorted(fields)]
    for need in ("LON", "LAT"):
        if need not in names:
            raise InputError(f"no grid_field named {need}", file)
    try:
        nlon, nlat = int(spec["nlon"]), int(spec["nlat"])
    except (KeyError, ValueError):
        raise InputError("grid_specification needs integer 'nlon' and 'nlat'", file) from None
    if nlon < 2 or nlat < 2:
        raise InputError("the grid needs at least 2 points along each axis", file)
    try:
        values = np.array(data.split(), dtype=float)
    except ValueError:
        raise InputError("grid_data values must be numbers", file) from None
    if values.size != nlon * nlat * len(names):
        raise InputError(f"grid_data has {values.size} values; expected nlon x nlat x fields = "
                         f"{nlon} x {nlat} x {len(names)} = {nlon * nlat * len(names)}", file)
    table = values.reshape(nlon * nlat, len(names))
    lon_all, lat_all = table[:, names.index("LON")], table[:, names.index("LAT")]
    try:
        bounds = [float(spec[k]) for k in ("lon_min", "lon_max", "lat_min", "lat_max")]
    except (KeyError, ValueError):
        raise InputError("grid_specification needs numeric lon_min, lon_max, lat_min, lat_max", file) from None
    if not (bounds[1] > bounds[0] and bounds[3] > bounds[2]):
        raise InputError("grid_specification: lon_max must exceed lon_min and lat_max lat_min", file)
    lon = np.linspace(bounds[0], bounds[1], nlon)
    lat = np.linspace(bounds[2], bounds[3], nlat)
    # Rows are placed by their coordinates (files round them to 4 decimals: allow a
    # quarter cell).
    fi = (lon_all - bounds[0]) / (lon[1] - lon[0])
    fj = (lat_all - bounds[2]) / (lat[1] - lat[0])
    ii, jj = np.rint(fi).astype(np.int64), np.rint(fj).astype(np.int64)
    if (np.abs(fi - ii) > 0.25).any() or (np.abs(fj - jj) > 0.25).any() or ii.min() < 0 \
            or jj.min() < 0 or ii.max() >= nlon or jj.max() >= nlat:
        raise InputError(f"grid_data points do not lie on the {nlon} x {nlat} grid of the "
                         "grid_specification", file)
    seen = np.zeros((nlat, nlon), bool)
    seen[jj, ii] = True
    if not seen.all():
        raise InputError("grid_data repeats a point and misses another", file)
    grid = {}
    units = {}
    for k, (name, unit) in enumerate(fields[i] for i in sorted(fields)):
        if name in ("LON", "LAT"):
            continue
        arr = np.empty((nlat, nlon))
        arr[jj, ii] = table[:, k]
        grid[name] = arr
        units[name] = unit
    for name in MEASURES:
        if name in grid and (grid[name] <= 0).any():
            raise InputError(f"{name} must be positive at every grid point", file)
    return ShakeMapGrid(lon=lon, lat=lat, fields=grid, units=units, event=event, path=file)


def to_lonlat(crs: str | None, x, y):
    """Asset coordinates in the system's CRS -> (lon, lat) in WGS 84 (pyproj)."""
    try:
        import pyproj
    except ImportError:
        raise InputError("a ShakeMap needs pyproj to place the assets on it: "
                         "pip install 'cascade-lifelines[geo]'") from None

    if crs is None:
        raise InputError("a ShakeMap is in longitude/latitude: the system needs a CRS "
                         "('crs' in system.toml) to place its assets on it", "system.toml")
    try:
        src = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise InputError(f"unknown CRS '{crs}': {str(exc).splitlines()[0]}", "system.toml") from None
    t = pyproj.Transformer.from_crs(src, "EPSG:4326", always_xy=True)
    lon, lat = t.transform(np.asarray(x, float), np.asarray(y, float))
    return np.asarray(lon), np.asarray(lat)


def ground_motion(grid: ShakeMapGrid, measure: str, lon, lat, where: str):
    """Median ln of ``measure`` (g for PGA/PSAxx, cm/s for PGV) and its σ_ln per point.

    σ comes from the ``STD<measure>`` column when the file has one, else NaN (the caller
    decides).  Points outside the grid are an :class:`InputError` naming ``where``.
    """
    m = measure.upper()
    if m not in grid.fields:
        raise InputError(f"the ShakeMap has no {m} field (fields: {', '.join(sorted(grid.fields))})",
                         grid.path)
    value = grid.interpolate(m, lon, lat)
    outside = np.isnan(value)
    if outside.any():
        k = int(np.flatnonzero(outside)[0])
        raise InputError(f"{int(outside.sum())} {where} lie outside the ShakeMap grid (first at "
                         f"lon {lon[k]:.5f}, lat {lat[k]:.5f}; the grid spans lon "
                         f"{grid.lon[0]:.4f} to {grid.lon[-1]:.4f}, lat {grid.lat[0]:.4f} to "
                         f"{grid.lat[-1]:.4f})", grid.path)
    ln_median = np.log(value * MEASURES.get(m, 1.0))
    std_name = "STD" + m
    sigma = grid.interpolate(std_name, lon, lat) if std_name in grid.fields else np.full(len(value), np.nan)
    return ln_median, sigma
