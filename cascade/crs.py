"""Distances need metres: refuse a geographic CRS, or reproject to a local UTM zone on request.

A system whose ``crs`` (system.toml) is geographic (EPSG:4326 or any CRS pyproj calls
geographic) has x = longitude and y = latitude in degrees: Euclidean distances between them
are meaningless.  Code that measures distances (the earthquake hazard, a region's circle,
per-asset fragility on a ground-motion field, ``cascade couple``) asks :func:`metric_frame`
first: it raises one :class:`InputError` that names the fix, or, with ``reproject=True``,
returns a :class:`Frame` that maps the system's coordinates to the WGS 84 UTM zone of their
centroid (pyproj).  Systems without a CRS and projected systems are taken as they are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError


#: Geographic CRSs recognised by name when pyproj (the ``geo`` extra) is not installed.
KNOWN_GEOGRAPHIC = {"EPSG:4326", "OGC:CRS84", "CRS84", "WGS84", "EPSG:4258", "EPSG:4269", "EPSG:4490"}


def _pyproj(what: str):
    try:
        import pyproj
    except ImportError:
        raise InputError(f"{what} needs pyproj: pip install 'cascade-lifelines[geo]'") from None
    return pyproj


def parse_crs(crs: str | None):
    """A pyproj CRS, or None; an unknown CRS is an :class:`InputError` naming system.toml."""
    if crs is None:
        return None
    pyproj = _pyproj("reading the system's CRS")

    try:
        return pyproj.CRS.from_user_input(str(crs))
    except pyproj.exceptions.CRSError as exc:
        raise InputError(f"unknown CRS '{crs}': {str(exc).splitlines()[0]}", "system.toml") from None


def is_geographic(crs: str | None) -> bool:
    """True when pyproj says the CRS is geographic (axes in degrees); without pyproj, when
    the CRS is one of the common geographic codes (``KNOWN_GEOGRAPHIC``)."""
    if crs is None:
        return False
    try:
        import pyproj  # noqa: F401
    except ImportError:
        return str(crs).upper().replace(" ", "") in KNOWN_GEOGRAPHIC
    parsed = parse_crs(crs)
    return bool(parsed is not None and parsed.is_geographic)


@dataclass
class Frame:
    """A local metric frame: ``xy(x, y)`` maps system coordinates to it; ``crs`` names it."""

    source: str
    crs: str
    _transformer: Any = None

    def xy(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        x, y = self._transformer.transform(np.asarray(x, float), np.asarray(y, float))
        return np.asarray(x, float), np.asarray(y, float)


def metric_frame(crs: str | None, x, y, what: str, reproject: bool = False,
                 option: str = "--reproject") -> Frame | None:
    """None when the coordinates can be used as metres; a :class:`Frame` to reproject them
    with (``reproject=True``); else an :class:`InputError` naming the fix.

    Parameters
    ----------
    crs : str or None
        The system's CRS.
    x, y : array_like
        The system's node coordinates (for the centroid's UTM zone).
    what : str
        What measures distances, for the message (e.g. "the earthquake hazard").
    """
    if not is_geographic(crs):
        return None
    if not reproject:
        raise InputError(f"{what} measures distances, but the system's CRS {crs} is geographic "
                         f"(degrees): pass {option} to work in the local UTM zone, or import "
                         "the system with a projected CRS (cascade import --crs)", "system.toml")
    pyproj = _pyproj("--reproject")
    from .io.imports import utm_for

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        raise InputError("no node has coordinates to reproject", "nodes.csv")
    target = utm_for(crs, x[ok], y[ok])
    t = pyproj.Transformer.from_crs(parse_crs(crs), target, always_xy=True)
    return Frame(source=str(crs), crs=target, _transformer=t)
