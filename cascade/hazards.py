"""Hazard scenarios: TOML files and samplers of the direct failures a hazard causes.

A scenario file names its system (a path relative to the file), one hazard with its
parameters, and a seed.  :func:`load_scenario` reads and validates it; the
:class:`Scenario` it returns draws sample ``i`` of the hazard's direct failures with
:meth:`Scenario.sample`.  :mod:`cascade.ensemble` then runs the cascade on each sample.

Hazards
-------
``random``
    Each element fails with a probability given overall or per layer / kind.
``targeted``
    The top elements by degree, betweenness (igraph) or cascade criticality
    (:func:`cascade.criticality.sweep`), each failing with a success probability.
``region``
    Everything inside a circle or a GeoJSON polygon, optionally only some kinds.
``flood``
    Water depth from a water level (against node ``elevation``) or an ESRI ASCII depth
    grid, against a depth threshold per kind.
``earthquake``
    Peak ground acceleration from Boore, Joyner & Fumal (1997) or a USGS ShakeMap grid.xml
    (:mod:`cascade.shakemap`), within-event residuals spatially correlated after Jayaram &
    Baker (2009) (:mod:`cascade.correlation`), and lognormal fragility curves
    P(fail | IM) = Φ(ln(IM / median) / β) per kind (FEMA Hazus; bridges on SA(1 s),
    :mod:`cascade.fragility`); buried pipes and lines break with a repair rate per km from
    peak ground velocity (Hazus, after O'Rourke & Ayala 1993).
``table``
    Per-asset failure probabilities, pyincore damage output or per-asset fragilities from a
    CSV (:mod:`cascade.damage_table`).
``rainfall``
    Ponding per drainage catchment from a storm, storage and the pumps that still run, run
    together with the cascade to a fixpoint (:mod:`cascade.rainfall`, :meth:`Scenario.run`).

Hazards that measure distances (earthquake, a region's circle, fragility tables) refuse a
system in a geographic CRS unless the scenario is loaded with ``reproject=True``
(:mod:`cascade.crs`).

Common random numbers
---------------------
Sample ``i`` uses ``numpy.random.default_rng([seed, i])``: first four 64-bit salts, then
the sample's global draws (an earthquake's inter-event term, a flood's level offset).
Every per-element draw is a counter-based uniform of (salt, hash of the element id), so it
depends on the element's *name*, not on its index.  The same sample on a modified system
(extra nodes or edges, hardened elements passed as ``immune``, medians scaled per element
with ``fragility_scale``) therefore differs only where the modification acts: the variance
reduction of common random numbers (Glasserman & Yao, Management Science 38, 884, 1992)
that candidate redundancy measures are compared with.  Correlated ground motion keeps this
for hardening; for added shaken sites it holds with the grid method (and with
``correlation = "none"``) but not with the exact (Cholesky) one, whose factor changes.

References
----------
* Boore, D. M., Joyner, W. B. & Fumal, T. E. (1997). Equations for estimating horizontal
  response spectra and peak acceleration from western North American earthquakes: a
  summary of recent work. Seismological Research Letters 68(1), 128-153; erratum Boore
  (2005), SRL 76(3), 368-369.  Coefficients for PGA and 1.0 s spectral acceleration.
* FEMA (2022). Hazus Earthquake Model Technical Manual, Hazus 5.1, chapter 8 (utility
  systems: electric power damage functions for substations, distribution circuits and
  generation plants; potable water pipelines: repair rate RR = 0.0001 PGV^2.25 repairs/km
  for brittle pipe, 0.3 x that for ductile pipe, 20 % of shaking repairs being breaks)
  and chapter 4 (PGV from 1-s spectral acceleration: PGV = (386.4 / 2π) SA(1 s) / 1.65 in
  inches/s).  The fragility medians and β below were taken from the machine-readable
  transcription of the Hazus 5.1 tables in NHERI SimCenter's DamageAndLossModelLibrary
  (``seismic/power_network/portfolio/Hazus v5.1/fragility.csv``); the table numbers of the
  printed manual could not be checked from here, so cite the classes (EP.S.L.A, ...).
  Potable water facilities (PWT, PPP, PST): Hazus-MH 2.1 chapter 8, see cascade/fragility.py.
* O'Rourke, M. J. & Ayala, G. (1993). Pipeline damage due to wave propagation. Journal of
  Geotechnical Engineering 119(9), 1490-1498 (the source of the Hazus repair rate).
"""
from __future__ import annotations

import hashlib
import json
import math
import tomllib
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .compiled import CompiledSystem, compile_system
from .errors import InputError, reading
from .fragility import FACILITY_CLASSES
from .system import InfrastructureSystem


def ndtr(x):
    """scipy.special.ndtr, imported on first use (commands without hazards skip its import)."""
    from scipy.special import ndtr as f
    return f(x)


def ndtri(x):
    """scipy.special.ndtri, imported on first use."""
    from scipy.special import ndtri as f
    return f(x)


HAZARDS = ("random", "targeted", "region", "flood", "earthquake", "table", "rainfall")
MAX_ANNUAL_RATE = 1e6   # [scenario] annual_rate <= this, return_period >= its inverse (years)
SCENARIO_KEYS = {"name", "system", "seed", "samples", "description", "annual_rate", "return_period"}

# --------------------------------------------------------------------------- Hazus tables
#: Hazus 5.1 electric power damage functions: class -> (median PGA in g, β) for the damage
#: states slight, moderate, extensive, complete.  EP.S = substation (L/M/H: low 34.5-150 kV,
#: medium 230 kV, high 500 kV voltage; A/U: anchored / unanchored components), EP.C =
#: distribution circuit, EP.G = generation plant (S small < 100 MW, ML medium/large).
HAZUS_CLASSES: dict[str, tuple[tuple[float, float], ...]] = {
    "EP.S.L.A": ((0.15, 0.70), (0.29, 0.55), (0.45, 0.45), (0.90, 0.45)),
    "EP.S.L.U": ((0.13, 0.65), (0.26, 0.50), (0.34, 0.40), (0.74, 0.40)),
    "EP.S.M.A": ((0.15, 0.60), (0.25, 0.50), (0.35, 0.40), (0.70, 0.40)),
    "EP.S.M.U": ((0.10, 0.60), (0.20, 0.50), (0.30, 0.40), (0.50, 0.40)),
    "EP.S.H.A": ((0.11, 0.50), (0.15, 0.45), (0.20, 0.35), (0.47, 0.40)),
    "EP.S.H.U": ((0.09, 0.50), (0.13, 0.40), (0.17, 0.35), (0.38, 0.35)),
    "EP.C.A": ((0.28, 0.30), (0.40, 0.55), (0.72, 0.15), (1.10, 0.15)),
    "EP.C.U": ((0.24, 0.25), (0.33, 0.20), (0.58, 0.15), (0.89, 0.15)),
    "EP.G.S.A": ((0.10, 0.55), (0.21, 0.55), (0.48, 0.50), (0.78, 0.50)),
    "EP.G.S.U": ((0.10, 0.50), (0.17, 0.50), (0.42, 0.50), (0.58, 0.55)),
    "EP.G.ML.A": ((0.10, 0.60), (0.25, 0.60), (0.52, 0.55), (0.92, 0.55)),
    "EP.G.ML.U": ((0.10, 0.60), (0.22, 0.55), (0.49, 0.50), (0.79, 0.50)),
}
DAMAGE_STATES = ("slight", "moderate", "extensive", "complete")
# Other lifelines' Hazus classes (bridges HWB1-28 on SA(1 s), potable water treatment plants
# PWT1-6, pumping plants PPP1-4, on-ground tanks PST.G.*, all on PGA): cascade/fragility.py.
HAZUS_CLASSES.update(FACILITY_CLASSES)
#: Kinds of the demo system's power layer that map to a Hazus class unless the scenario
#: says otherwise ("layer:kind" keys take precedence over "kind" keys).
DEFAULT_FRAGILITY = {"substation": "EP.S.M.A", "distribution": "EP.S.L.A", "feeder": "EP.C.A",
                     "power:source": "EP.G.ML.A"}
#: Hazus pipe repair-rate multipliers: 1.0 brittle (cast iron, asbestos cement, ...),
#: 0.3 ductile (ductile iron, steel, PVC).
DEFAULT_REPAIR_RATE = {"pipe": 1.0}
HAZUS_BREAK_FRACTION = 0.2       # share of shaking-induced repairs that are breaks

# Boore, Joyner & Fumal (1997), with the 2005 erratum: ln Y = b1 + b2 (M-6) + b3 (M-6)^2
# + b5 ln r + bv ln(Vs30 / Va), r = sqrt(rjb^2 + h^2), Y in g (random horizontal component).
# sig_r: intra-event (site-to-site) and sig_e: inter-event standard deviations of ln Y.
BJF97 = {
    "pga": dict(b1ss=-0.313, b1rv=-0.117, b1all=-0.242, b2=0.527, b3=0.000, b5=-0.778,
                bv=-0.371, va=1396.0, h=5.57, sig_r=0.460, sig_e=0.184),
    "sa1": dict(b1ss=-1.133, b1rv=-1.009, b1all=-1.080, b2=1.036, b3=-0.032, b5=-0.798,
                bv=-0.698, va=1406.0, h=2.90, sig_r=0.527, sig_e=0.214),
}
MECHANISMS = {"unspecified": "b1all", "strike-slip": "b1ss", "reverse": "b1rv"}


def bjf97_ln(measure: str, magnitude: float, distance_km, vs30=760.0,
             mechanism: str = "unspecified") -> np.ndarray:
    """Median ln of PGA or SA(1.0 s) in g by Boore, Joyner & Fumal (1997).

    Parameters
    ----------
    measure : {"pga", "sa1"}
    magnitude : float
        Moment magnitude (the relation is fitted for 5.5 to 7.5).
    distance_km : array_like of float
        Joyner-Boore distance; a point source's epicentral distance.
    vs30 : float or array_like
        Shear-wave velocity of the top 30 m, m/s.
    mechanism : {"unspecified", "strike-slip", "reverse"}

    Returns
    -------
    ndarray of float64, the shape of ``distance_km``
    """
    c = BJF97[measure]
    m = magnitude - 6.0
    r = np.sqrt(np.asarray(distance_km, float) ** 2 + c["h"] ** 2)
    return (c[MECHANISMS[mechanism]] + c["b2"] * m + c["b3"] * m * m + c["b5"] * np.log(r)
            + c["bv"] * np.log(np.asarray(vs30, float) / c["va"]))


def pgv_from_sa1(sa1_g) -> np.ndarray:
    """Hazus: PGV (cm/s) = (386.4 / 2π) · SA(1 s) / 1.65 inches/s, times 2.54."""
    return 386.4 / (2 * math.pi) * np.asarray(sa1_g, float) / 1.65 * 2.54


def pipe_repair_rate(pgv_cm_s, factor=1.0) -> np.ndarray:
    """Hazus repairs per km from ground shaking: ``factor · 0.0001 · PGV^2.25`` (cm/s)."""
    return factor * 1e-4 * np.asarray(pgv_cm_s, float) ** 2.25


# --------------------------------------------------------------------------- random numbers
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def element_keys(ids) -> np.ndarray:
    """A stable 64-bit key per element name (BLAKE2b), the same in every process.

    Returns
    -------
    ndarray of uint64, shape (len(ids),)
    """
    blake = hashlib.blake2b
    seq = ids.tolist() if isinstance(ids, np.ndarray) else ids       # Python objects: faster
    digests = b"".join([blake(str(i).encode(), digest_size=8).digest() for i in seq])
    # the digests as little-endian integers, as int.from_bytes(digest, "little") reads them
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def keyed_uniform(keys: np.ndarray, salt: np.uint64) -> np.ndarray:
    """Uniform(0, 1) draws, one per key, from the SplitMix64 finaliser of ``key ^ salt``.

    A counter-based generator (Salmon et al., SC'11 "Parallel random numbers: as easy as
    1, 2, 3"): the draw of an element depends only on its key and the salt, never on which
    other elements exist or in which order they are drawn.

    Returns
    -------
    ndarray of float64 in the open interval (0, 1)
    """
    with np.errstate(over="ignore"):
        z = keys ^ np.uint64(salt)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53


@dataclass
class Draws:
    """The random inputs of one sample: salts for keyed draws and a generator for the rest."""

    salts: np.ndarray            # (4,) uint64: node, edge, node ground motion, edge ground motion
    rng: np.random.Generator     # for per-sample global draws, in a fixed order

    @classmethod
    def of(cls, seed: int, sample: int) -> "Draws":
        rng = np.random.default_rng([int(seed), int(sample)])
        return cls(rng.integers(0, 2**64, size=4, dtype=np.uint64), rng)


@dataclass
class PlanPart:
    """One part of a :class:`SamplingPlan`: the elements (node or edge indices ``idx``, in the
    order the Python path lists failures) that a hazard can fail, with per-element constants
    ``a``-``d`` whose meaning depends on ``mode`` (see :mod:`cascade._ensemble`)."""

    mode: int                    # 0 threshold, 1 normal (fragility), 2 pipe repair rate, 3 flood
    idx: np.ndarray              # (k,) int64
    keys: np.ndarray             # (k,) uint64, the keyed draws' keys
    a: np.ndarray                # (k,) float64
    b: np.ndarray | None = None
    c: np.ndarray | None = None
    d: np.ndarray | None = None
    s_fail: int = 0              # salt of the failure draw
    s_gm: int = 2                # salt of the residual draw (modes 1 and 2)

    def arrays(self):
        z = np.zeros(len(self.idx))
        f = lambda v: z if v is None else np.ascontiguousarray(v, np.float64)  # noqa: E731
        return (self.mode, np.ascontiguousarray(self.idx, np.int64),
                np.ascontiguousarray(self.keys, np.uint64), f(self.a), f(self.b), f(self.c),
                f(self.d), self.s_fail, self.s_gm)


@dataclass
class SamplingPlan:
    """What :mod:`cascade._ensemble` needs to draw a hazard's samples in compiled code: a node
    part, an edge part, and scalars.  Built by ``Hazard.compiled_plan``; per block of samples,
    ``Hazard.plan_inputs`` gives the per-sample normals and correlated residuals."""

    nodes: PlanPart
    edges: PlanPart
    variability: bool = False
    break_fraction: float = 0.0
    grid: bool = False


def _empty_part(s_fail: int) -> PlanPart:
    return PlanPart(0, np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0), s_fail=s_fail)


def _threshold_part(mask: np.ndarray, keys: np.ndarray, p, s_fail: int) -> PlanPart:
    """Elements of ``mask`` failing when their keyed uniform is below ``p`` (scalar or per
    element); elements outside the mask never fail."""
    idx = np.flatnonzero(mask)
    p = np.broadcast_to(np.asarray(p, float), mask.shape)[idx] if np.ndim(p) else np.full(len(idx), float(p))
    return PlanPart(0, idx, keys[idx], p, s_fail=s_fail)


# --------------------------------------------------------------------------- validation
class _Table:
    """A TOML table being validated: typed getters that name the file and key on error."""

    def __init__(self, data: Mapping, prefix: str, file: str):
        if not isinstance(data, Mapping):
            raise InputError(f"'{prefix}' must be a table", file)
        self.data, self.prefix, self.file = dict(data), prefix, file
        self.used: set[str] = set()

    def _name(self, key):
        return f"{self.prefix}.{key}" if self.prefix else key

    def error(self, key, message):
        return InputError(f"key '{self._name(key)}': {message}", self.file)

    def has(self, key):
        return key in self.data

    def get(self, key, default=None, required=False):
        self.used.add(key)
        if key not in self.data:
            if required:
                raise InputError(f"missing key '{self._name(key)}'", self.file)
            return default
        return self.data[key]

    def number(self, key, default=None, required=False, low=None, high=None, low_open=False,
               integer=False):
        value = self.get(key, default, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (integer and not isinstance(value, int)):
            raise self.error(key, f"must be {'an integer' if integer else 'a number'}, not {value!r}")
        if not math.isfinite(value):
            raise self.error(key, f"must be finite, not {value!r}")
        if low is not None and (value < low or (low_open and value == low)):
            raise self.error(key, f"must be {'>' if low_open else '>='} {low}, not {value!r}")
        if high is not None and value > high:
            raise self.error(key, f"must be <= {high}, not {value!r}")
        return value

    def string(self, key, default=None, required=False, choices=None):
        value = self.get(key, default, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, not {value!r}")
        if choices is not None and value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def boolean(self, key, default=None):
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def strings(self, key, default=None):
        value = self.get(key, default)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"must be a list of strings, not {value!r}")
        return list(value)

    def numbers_table(self, key, low=0.0, high=None, default=None):
        """A number, or a table of name -> number (per layer or kind)."""
        value = self.get(key, default)
        if value is None:
            return None
        if isinstance(value, Mapping):
            sub = _Table(value, self._name(key), self.file)
            return {k: sub.number(k, required=True, low=low, high=high) for k in value}
        return self.number(key, low=low, high=high)

    def finish(self):
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise InputError(f"unknown key '{self._name(unknown[0])}'", self.file)


# --------------------------------------------------------------------------- system facts
@dataclass
class Elements:
    """What hazards need to know about a system's elements, as arrays in compiled order."""

    node_keys: np.ndarray        # (n,) uint64
    edge_keys: np.ndarray        # (m,) uint64
    node_kind: np.ndarray        # (n,) object
    node_layer: np.ndarray       # (n,) object: layer names
    edge_kind: np.ndarray        # (m,) object ('' when the column is missing)
    edge_layer: np.ndarray       # (m,) object
    x: np.ndarray                # (n,) float64, NaN when missing
    y: np.ndarray
    nodes: Any                   # the system's nodes table (for optional columns)
    edge_length: np.ndarray      # (m,) float64 metres: `length`, else straight-line
    crs: Any = None              # CRS of x, y (the system's, or a local UTM zone: cascade.crs)
    project: Any = None          # None, or (x, y) -> (x, y) from the system's CRS to `crs`
    _pairs: dict = field(default_factory=dict, repr=False, compare=False)   # see groups()

    def groups(self, edges: bool = False) -> tuple[list, np.ndarray]:
        """The distinct (layer, kind) pairs of the nodes (or edges) and each element's index
        into them, computed once: every per-layer/kind table of a hazard is looked up per
        pair, not per element (:func:`_lookup`, :func:`_check_names`)."""
        key = "edges" if edges else "nodes"
        got = self._pairs.get(key)
        if got is None:
            got = self._pairs[key] = (_pair_index(self.edge_layer, self.edge_kind) if edges
                                      else _pair_index(self.node_layer, self.node_kind))
        return got

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_pairs"] = {}          # recomputed on demand: not sent to Dask workers
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    @classmethod
    def of(cls, system: InfrastructureSystem, compiled: CompiledSystem, frame=None) -> "Elements":
        # compile_system keeps file order, so rows line up with compiled indices.
        nodes, edges = system.nodes, system.edges
        layer_names = np.asarray(compiled.layer_names, dtype=object)
        x = nodes["x"].to_numpy(float)
        y = nodes["y"].to_numpy(float)
        if frame is not None:                      # a geographic system, reprojected
            x, y = frame.xy(x, y)
        src, dst = compiled.edge_src.astype(np.int64), compiled.edge_dst.astype(np.int64)
        straight = np.hypot(x[src] - x[dst], y[src] - y[dst])
        length = edges["length"].to_numpy(float) if "length" in edges else np.full(len(src), np.nan)
        length = np.where(np.isnan(length), straight, length)
        node_keys, edge_keys = _element_keys_of(compiled)      # hashed once per system
        return cls(node_keys, edge_keys,
                   nodes["kind"].to_numpy(dtype=object), layer_names[compiled.node_layer],
                   edges["kind"].astype(str).to_numpy(dtype=object) if "kind" in edges
                   else np.full(len(src), "", dtype=object),
                   layer_names[compiled.node_layer[src]] if len(src) else np.zeros(0, object),
                   x, y, nodes, length, frame.crs if frame is not None else system.crs,
                   frame.xy if frame is not None else None)

    def column(self, name: str, what: str) -> np.ndarray:
        if name not in self.nodes.columns:
            raise InputError(f"the {what} hazard needs the node column '{name}'", "nodes.csv")
        values = np.asarray(self.nodes[name], dtype=float)
        return values


def _lookup(table: Mapping[str, Any], layers: np.ndarray, kinds: np.ndarray, default=None,
            groups: tuple[list, np.ndarray] | None = None):
    """Per element: table['layer:kind'], else table[kind], else table[layer], else default.

    ``groups``: the elements' (layer, kind) pairs and their index (:meth:`Elements.groups`),
    so that the table is looked up once per pair."""
    pairs, inverse = groups if groups is not None else _pair_index(layers, kinds)
    values = np.empty(len(pairs), dtype=object)
    for i, (layer, kind) in enumerate(pairs):
        values[i] = table.get(f"{layer}:{kind}", table.get(kind, table.get(layer, default)))
    return values[inverse]


def _pair_index(layers, kinds) -> tuple[list, np.ndarray]:
    """The distinct (layer, kind) pairs and each element's index into them."""
    def codes(values):
        values = values.tolist() if isinstance(values, np.ndarray) else list(values)
        index = {v: i for i, v in enumerate(dict.fromkeys(values))}
        return list(index), np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))

    (layer_names, lc), (kind_names, kc) = codes(layers), codes(kinds)
    k = max(len(kind_names), 1)
    first, inverse = np.unique(lc * k + kc, return_inverse=True)
    return [(layer_names[c // k], kind_names[c % k]) for c in first.tolist()], inverse.reshape(-1)


def _check_names(table: Mapping, elements: Elements, key: str, file: str, edges=False):
    """Every key of a per-layer/kind table must name a layer, a kind or 'layer:kind'."""
    if not table:
        return
    names = {"default"}
    for pairs, _ in [elements.groups()] + ([elements.groups(edges=True)] if edges else []):
        for layer, kind in pairs:
            names |= {layer, kind, f"{layer}:{kind}"}
    for name in table:
        if name not in names:
            raise InputError(f"key '{key}.{name}': no layer or kind '{name}' in the system", file)


# --------------------------------------------------------------------------- hazards
class Hazard:
    """Base class: parameters from TOML, ``prepare`` per system, ``draw`` per sample."""

    type: str = ""
    #: True when the hazard measures distances between coordinates (needs metres: a
    #: geographic CRS is refused or reprojected, see cascade.crs).
    uses_distances = False

    def prepare(self, system, compiled, elements: Elements) -> dict:
        return {}

    def draw(self, prep: dict, draws: Draws, compiled: CompiledSystem, scale_nodes: np.ndarray,
             scale_edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boolean masks (n,) and (m,) of direct node and edge failures."""
        raise NotImplementedError

    def draw_block(self, prep: dict, draws: list, compiled: CompiledSystem) -> list:
        """Direct failures of several samples without scaling: a list of index pairs.

        The default loops over :meth:`draw`; a hazard may vectorise it across samples, but
        must return exactly what :meth:`draw` returns for each sample.
        """
        ones_n, ones_e = np.ones(compiled.n_nodes), np.ones(compiled.n_edges)
        out = []
        for d in draws:
            nodes, edges = self.draw(prep, d, compiled, ones_n, ones_e)
            out.append((np.flatnonzero(nodes), np.flatnonzero(edges)))
        return out

    def compiled_plan(self, prep: dict, compiled: CompiledSystem) -> "SamplingPlan | None":
        """The hazard's draws for :mod:`cascade._ensemble` (identical to :meth:`draw_block`),
        or None: this hazard samples in Python only."""
        return None

    def plan_inputs(self, prep: dict, salts: np.ndarray, normal: np.ndarray) -> tuple:
        """Per block of B samples, from their salts (B, 4) and the first standard normal of
        each sample's generator (B,), what :meth:`draw_block` uses of them: (per-sample value
        (B,), node residuals (B, k) or None, edge residuals (B, k) or None).  A part's residuals
        may also be a pair ((B, k) without the grid fields' nugget terms, (k,) the nuggets'
        standard deviations, -1 where none): the compiled loop adds the nugget term itself,
        only for the elements it needs."""
        return np.zeros(len(salts)), None, None

    def describe(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


@dataclass
class RandomHazard(Hazard):
    """Each element fails independently with probability ``fraction`` (overall, or per layer
    or kind); the expected failed share of a group is its fraction."""

    fraction: Any = 0.0
    elements: str = "nodes"
    type: str = "random"
    _file: str = ""

    @classmethod
    def parse(cls, t: _Table, base: Path):
        fraction = t.numbers_table("fraction", low=0.0, high=1.0)
        if fraction is None:
            raise InputError("missing key 'hazard.fraction'", t.file)
        return cls(fraction=fraction, elements=t.string("elements", "nodes", choices=("nodes", "edges", "all")),
                   _file=t.file)

    def prepare(self, system, compiled, el):
        if isinstance(self.fraction, dict):
            _check_names(self.fraction, el, "hazard.fraction", self._file, edges=True)
            default = self.fraction.get("default", 0.0)
            pn = _lookup(self.fraction, el.node_layer, el.node_kind, default, el.groups()).astype(float)
            pe = _lookup(self.fraction, el.edge_layer, el.edge_kind, default,
                         el.groups(edges=True)).astype(float)
        else:
            pn = np.full(compiled.n_nodes, float(self.fraction))
            pe = np.full(compiled.n_edges, float(self.fraction))
        if self.elements == "edges":
            pn[:] = 0.0
        if self.elements == "nodes":
            pe[:] = 0.0
        return {"pn": pn, "pe": pe}

    def draw(self, prep, draws, compiled, scale_nodes, scale_edges):
        el = prep["elements"]
        nodes = keyed_uniform(el.node_keys, draws.salts[0]) < prep["pn"]
        edges = keyed_uniform(el.edge_keys, draws.salts[1]) < prep["pe"]
        return nodes, edges

    def compiled_plan(self, prep, compiled):
        el = prep["elements"]
        return SamplingPlan(_threshold_part(prep["pn"] > 0, el.node_keys, prep["pn"], 0),
                            _threshold_part(prep["pe"] > 0, el.edge_keys, prep["pe"], 1))


@dataclass
class TargetedHazard(Hazard):
    """The ``count`` (or ``fraction``) top-ranked nodes by degree, betweenness or cascade
    criticality fail, each with probability ``success``; ties broken by id."""

    by: str = "degree"
    count: int | None = None
    fraction: float | None = None
    layers: list | None = None
    kinds: list | None = None
    success: float = 1.0
    type: str = "targeted"
    _file: str = ""

    @classmethod
    def parse(cls, t: _Table, base: Path):
        by = t.string("by", required=True, choices=("degree", "betweenness", "criticality"))
        count = t.number("count", low=1, integer=True)
        fraction = t.number("fraction", low=0.0, high=1.0, low_open=True)
        if (count is None) == (fraction is None):
            raise InputError("give exactly one of 'hazard.count' and 'hazard.fraction'", t.file)
        return cls(by=by, count=count, fraction=fraction, layers=t.strings("layers"),
                   kinds=t.strings("kinds"), success=t.number("success", 1.0, low=0.0, high=1.0),
                   _file=t.file)

    def prepare(self, system, compiled, el):
        cand = _filter(el, self.layers, self.kinds, self._file)
        if self.by == "degree":
            score = np.diff(compiled.adj_ptr).astype(float)
        elif self.by == "betweenness":
            from .light import import_igraph

            g = import_igraph().Graph(n=compiled.n_nodes, edges=list(zip(compiled.edge_src.tolist(),
                                                                compiled.edge_dst.tolist())))
            score = np.asarray(g.betweenness(directed=False), float)
        else:
            try:
                from .criticality import sweep
            except ImportError:
                raise InputError("targeting by criticality needs cascade.criticality, which "
                                 "this installation lacks", self._file) from None
            table = sweep(system, elements="nodes", compiled=compiled)
            # sweep's order (score, nodes lost, id) is the ranking: score by position.
            score = np.full(compiled.n_nodes, -np.inf)
            idx = compiled.node_index(table["id"])
            score[idx] = -np.arange(len(idx), dtype=float)
        idx = np.flatnonzero(cand)
        order = np.lexsort((compiled.node_ids[idx].astype(str), -score[idx]))
        k = self.count if self.count is not None else int(round(self.fraction * len(idx)))
        targets = np.zeros(compiled.n_nodes, bool)
        targets[idx[order[:k]]] = True
        return {"targets": targets}

    def draw(self, prep, draws, compiled, scale_nodes, scale_edges):
        hit = prep["targets"].copy()
        if self.success < 1.0:
            hit &= keyed_uniform(prep["elements"].node_keys, draws.salts[0]) < self.success
        return hit, np.zeros(compiled.n_edges, bool)

    def compiled_plan(self, prep, compiled):
        # success 1: every uniform is below 1, so the draw changes nothing (as in draw).
        return SamplingPlan(_threshold_part(prep["targets"], prep["elements"].node_keys,
                                            min(self.success, 1.0), 0), _empty_part(1))


def _filter(el: Elements, layers, kinds, file) -> np.ndarray:
    mask = np.ones(len(el.node_kind), bool)
    if layers is not None:
        unknown = set(layers) - set(el.node_layer)
        if unknown:
            raise InputError(f"key 'hazard.layers': no layer '{sorted(unknown)[0]}' in the system", file)
        mask &= np.isin(el.node_layer, layers)
    if kinds is not None:
        unknown = set(kinds) - set(el.node_kind)
        if unknown:
            raise InputError(f"key 'hazard.kinds': no kind '{sorted(unknown)[0]}' in the system", file)
        mask &= np.isin(el.node_kind, kinds)
    return mask


def _read_polygons(path: Path) -> list[list[np.ndarray]]:
    """Polygons (each a list of rings, (k, 2) arrays) of a GeoJSON file."""
    with reading(path):
        text = path.read_bytes()
    try:
        data = json.loads(text.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid GeoJSON: {exc}", str(path)) from None
    geoms = []

    def collect(obj):
        if not isinstance(obj, dict):
            raise InputError("not a GeoJSON object", str(path))
        kind = obj.get("type")
        if kind == "FeatureCollection":
            for f in obj.get("features", []):
                collect(f)
        elif kind == "Feature":
            collect(obj.get("geometry") or {})
        elif kind == "GeometryCollection":
            for g in obj.get("geometries", []):
                collect(g)
        elif kind == "Polygon":
            geoms.append(obj.get("coordinates"))
        elif kind == "MultiPolygon":
            geoms.extend(obj.get("coordinates") or [])
        else:
            raise InputError(f"unsupported GeoJSON type {kind!r} (use Polygon or MultiPolygon)", str(path))

    collect(data)
    polygons = []
    for rings in geoms:
        try:
            arrs = [np.asarray(r, float)[:, :2] for r in rings]
        except (TypeError, ValueError, IndexError):
            raise InputError("polygon coordinates must be [[x, y], ...] rings", str(path)) from None
        if not arrs or any(len(a) < 3 for a in arrs):
            raise InputError("a polygon ring needs at least 3 points", str(path))
        polygons.append(arrs)
    if not polygons:
        raise InputError("no polygon in the file", str(path))
    return polygons


def points_in_polygons(x: np.ndarray, y: np.ndarray, polygons) -> np.ndarray:
    """Even-odd ray casting: inside any polygon (rings after the first are holes)."""
    inside_any = np.zeros(len(x), bool)
    for rings in polygons:
        inside = np.zeros(len(x), bool)
        for ring in rings:
            xa, ya = ring[:, 0], ring[:, 1]
            xb, yb = np.roll(xa, -1), np.roll(ya, -1)
            for x1, y1, x2, y2 in zip(xa, ya, xb, yb):
                crosses = (y1 > y) != (y2 > y)
                with np.errstate(divide="ignore", invalid="ignore"):
                    xcross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
                inside ^= crosses & (x < xcross)
        inside_any |= inside
    return inside_any


@dataclass
class RegionHazard(Hazard):
    """Every node inside a circle (``center``, ``radius`` in the system's CRS units) or the
    polygons of a GeoJSON file fails with probability ``probability``."""

    center: list | None = None
    radius: float | None = None
    polygon: str | None = None
    layers: list | None = None
    kinds: list | None = None
    probability: float = 1.0
    type: str = "region"
    _file: str = ""
    _polygons: Any = None

    @property
    def uses_distances(self):              # a circle's radius is a distance; a polygon is not
        return self.center is not None

    @classmethod
    def parse(cls, t: _Table, base: Path):
        center, polygon = t.get("center"), t.string("polygon")
        if (center is None) == (polygon is None):
            raise InputError("give exactly one of 'hazard.center' (with 'hazard.radius') and "
                             "'hazard.polygon'", t.file)
        radius, polys = None, None
        if center is not None:
            if not (isinstance(center, list) and len(center) == 2 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in center)):
                raise t.error("center", f"must be [x, y], not {center!r}")
            radius = t.number("radius", required=True, low=0.0, low_open=True)
        else:
            polys = _read_polygons((base / polygon).resolve())
        return cls(center=center, radius=radius, polygon=polygon, layers=t.strings("layers"),
                   kinds=t.strings("kinds"), probability=t.number("probability", 1.0, low=0.0, high=1.0),
                   _file=t.file, _polygons=polys)

    def prepare(self, system, compiled, el):
        if np.isnan(el.x).any() or np.isnan(el.y).any():
            raise InputError("the region hazard needs coordinates 'x' and 'y' on every node", "nodes.csv")
        if self.center is not None:
            cx, cy = self.center
            if el.project is not None:
                px, py = el.project(np.array([cx]), np.array([cy]))
                cx, cy = float(px[0]), float(py[0])
            inside = np.hypot(el.x - cx, el.y - cy) <= self.radius
        else:
            inside = points_in_polygons(el.x, el.y, self._polygons)
        return {"inside": inside & _filter(el, self.layers, self.kinds, self._file)}

    def draw(self, prep, draws, compiled, scale_nodes, scale_edges):
        hit = prep["inside"].copy()
        if self.probability < 1.0:
            hit &= keyed_uniform(prep["elements"].node_keys, draws.salts[0]) < self.probability
        return hit, np.zeros(compiled.n_edges, bool)

    def compiled_plan(self, prep, compiled):
        return SamplingPlan(_threshold_part(prep["inside"], prep["elements"].node_keys,
                                            min(self.probability, 1.0), 0), _empty_part(1))

    def describe(self):
        d = super().describe()
        return {k: v for k, v in d.items() if v is not None}


def read_ascii_grid(path: Path) -> dict:
    """An ESRI ASCII grid (``.asc``): header ``ncols``, ``nrows``, ``xllcorner``/``xllcenter``,
    ``yllcorner``/``yllcenter``, ``cellsize``, optional ``nodata_value``; then ``nrows`` rows
    of values, north first.  Returns ``values`` (nrows, ncols) float64 with NaN for no data,
    ``x0``, ``y0`` (lower-left corner) and ``cellsize``."""
    with reading(path):
        lines = path.read_text(encoding="utf-8").split("\n")
    header, i = {}, 0
    while i < len(lines) and lines[i].strip() and lines[i].split()[0][0].isalpha():
        parts = lines[i].split()
        if len(parts) != 2:
            raise InputError(f"bad header line '{lines[i].strip()}'", str(path), i + 1)
        try:
            header[parts[0].lower()] = float(parts[1])
        except ValueError:
            raise InputError(f"header '{parts[0]}' is not a number", str(path), i + 1) from None
        i += 1
    for key in ("ncols", "nrows", "cellsize"):
        if key not in header:
            raise InputError(f"missing header '{key}'", str(path))
    ncols, nrows, cs = int(header["ncols"]), int(header["nrows"]), header["cellsize"]
    if ncols < 1 or nrows < 1 or cs <= 0:
        raise InputError("ncols, nrows and cellsize must be positive", str(path))
    if "xllcorner" in header:
        x0 = header["xllcorner"]
    elif "xllcenter" in header:
        x0 = header["xllcenter"] - cs / 2
    else:
        raise InputError("missing header 'xllcorner'", str(path))
    if "yllcorner" in header:
        y0 = header["yllcorner"]
    elif "yllcenter" in header:
        y0 = header["yllcenter"] - cs / 2
    else:
        raise InputError("missing header 'yllcorner'", str(path))
    try:
        values = np.array(" ".join(lines[i:]).split(), dtype=float)
    except ValueError:
        raise InputError("grid values must be numbers", str(path)) from None
    if values.size != ncols * nrows:
        raise InputError(f"expected {ncols * nrows} values ({nrows} rows of {ncols}), found {values.size}",
                         str(path))
    values = values.reshape(nrows, ncols)
    if "nodata_value" in header:
        values[values == header["nodata_value"]] = np.nan
    return {"values": values, "x0": x0, "y0": y0, "cellsize": cs}


def grid_at(grid: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The value of the cell holding each point; NaN outside the grid or on no data."""
    v = grid["values"]
    nrows, ncols = v.shape
    col = np.floor((x - grid["x0"]) / grid["cellsize"]).astype(np.int64)
    row = nrows - 1 - np.floor((y - grid["y0"]) / grid["cellsize"]).astype(np.int64)
    ok = (col >= 0) & (col < ncols) & (row >= 0) & (row < nrows)
    out = np.full(len(x), np.nan)
    out[ok] = v[row[ok], col[ok]]
    return out


@dataclass
class FloodHazard(Hazard):
    """Water depth at each node, from a water surface ``level`` (m, same datum as node
    ``elevation``) or an ESRI ASCII ``depth_grid`` (m), plus a per-sample normal offset of
    standard deviation ``level_sd`` (on a grid, of wet cells only); a node fails when its depth exceeds its kind's
    threshold (``[hazard.threshold]``, keys ``kind``, ``layer`` or ``layer:kind``, and
    ``default``).  Kinds without a threshold do not flood.  ``fragility_scale`` multiplies
    an element's threshold (a raised or walled substation)."""

    level: float | None = None
    depth_grid: str | None = None
    level_sd: float = 0.0
    threshold: dict = field(default_factory=dict)
    type: str = "flood"
    _file: str = ""
    _grid: Any = None

    @classmethod
    def parse(cls, t: _Table, base: Path):
        level, grid = t.number("level"), t.string("depth_grid")
        if (level is None) == (grid is None):
            raise InputError("give exactly one of 'hazard.level' and 'hazard.depth_grid'", t.file)
        threshold = t.get("threshold", required=True)
        sub = _Table(threshold, "hazard.threshold", t.file)
        threshold = {k: sub.number(k, required=True, low=0.0) for k in threshold}
        if not threshold:
            raise InputError("key 'hazard.threshold': give at least one kind", t.file)
        return cls(level=level, depth_grid=grid, level_sd=t.number("level_sd", 0.0, low=0.0),
                   threshold=threshold, _file=t.file,
                   _grid=read_ascii_grid((base / grid).resolve()) if grid else None)

    def prepare(self, system, compiled, el):
        _check_names(self.threshold, el, "hazard.threshold", self._file)
        thr = _lookup(self.threshold, el.node_layer, el.node_kind,
                      self.threshold.get("default", np.inf), el.groups()).astype(float)
        if self.level is not None:
            elevation = el.column("elevation", "flood")
            depth = self.level - elevation
            depth = np.where(np.isnan(depth), -np.inf, depth)      # unknown elevation: dry
        else:
            depth = grid_at(self._grid, el.x, el.y)
            depth = np.where(np.isnan(depth), -np.inf, depth)      # outside / no data: dry
        return {"depth": depth, "threshold": thr}

    def draw(self, prep, draws, compiled, scale_nodes, scale_edges):
        offset = self.level_sd * draws.rng.standard_normal() if self.level_sd > 0 else 0.0
        depth = prep["depth"] + offset
        if self._grid is not None:
            # A grid gives the flood's extent: the offset deepens or drains wet cells only.
            depth = np.where(prep["depth"] > 0, depth, prep["depth"])
        nodes = (depth > 0) & (depth > prep["threshold"] * scale_nodes)
        return nodes, np.zeros(compiled.n_edges, bool)

    def compiled_plan(self, prep, compiled):
        depth, thr = prep["depth"], prep["threshold"]
        idx = np.flatnonzero((depth > -np.inf) & ~(thr == np.inf))   # others never flood
        return SamplingPlan(PlanPart(3, idx, prep["elements"].node_keys[idx], depth[idx], thr[idx]),
                            _empty_part(1), grid=self._grid is not None)

    def plan_inputs(self, prep, salts, normal):
        # The offset of each sample, as draw() draws it.
        return (self.level_sd * normal if self.level_sd > 0 else np.zeros(len(salts))), None, None

    def describe(self):
        d = super().describe()
        return {k: v for k, v in d.items() if v is not None}


@dataclass
class EarthquakeHazard(Hazard):
    """An earthquake: ground motion either from a point source (``epicenter`` [x, y] in the
    system's CRS, moment ``magnitude``; PGA and SA(1 s) by Boore, Joyner & Fumal 1997 with a
    per-sample inter-event term and per-site intra-event terms) or from a USGS ShakeMap
    ``grid.xml`` (``shakemap``: PGA, PSA10 and PGV interpolated to the assets, sampled with
    the file's STD columns when it has them); intra-event residuals spatially correlated
    after Jayaram & Baker (2009) (``correlation``, default on, see :mod:`cascade.correlation`)
    or independent (``correlation = "none"``: the draws of earlier versions, bit for bit).
    Nodes fail by the lognormal fragility of their kind (``[hazard.fragility]``: a Hazus class
    name such as ``"EP.S.M.A"`` or ``"HWB17"``, or ``{median = g, beta = β}``) at
    ``damage_state``; edges whose kind has a ``[hazard.repair_rate]`` multiplier (1.0 brittle
    and 0.3 ductile pipe in Hazus) break with probability 1 - exp(-b · RR · L), RR the Hazus
    repairs/km from PGV at the edge midpoint, b = ``break_fraction``, L in km."""

    epicenter: list | None = None
    magnitude: float | None = None
    shakemap: str | None = None
    vs30: float = 760.0
    mechanism: str = "unspecified"
    variability: bool = True
    correlation: str = "jayaram-baker-2009"
    correlation_method: str = "auto"
    damage_state: str = "extensive"
    fragility: dict = field(default_factory=dict)
    repair_rate: dict = field(default_factory=dict)
    break_fraction: float = HAZUS_BREAK_FRACTION
    type: str = "earthquake"
    _file: str = ""
    _grid: Any = None

    uses_distances = True

    @classmethod
    def parse(cls, t: _Table, base: Path, **extra):
        from .correlation import MODELS

        shakemap = t.string("shakemap")
        epi, magnitude, grid = None, None, None
        if shakemap is not None:
            from .shakemap import read_grid_xml

            for key in ("epicenter", "magnitude", "vs30", "mechanism"):
                if t.has(key):
                    raise t.error(key, "does not go with 'hazard.shakemap' (the ShakeMap gives "
                                       "the ground motion)")
            grid = read_grid_xml((base / shakemap).resolve())
        else:
            epi = t.get("epicenter", required=True)
            if not (isinstance(epi, list) and len(epi) == 2 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in epi)):
                raise t.error("epicenter", f"must be [x, y], not {epi!r}")
            epi = [float(v) for v in epi]
            magnitude = t.number("magnitude", required=True, low=3.0, high=9.5)
        state = t.string("damage_state", "extensive", choices=DAMAGE_STATES)
        fragility = dict(DEFAULT_FRAGILITY)
        raw = t.get("fragility", {})
        sub = _Table(raw, "hazard.fragility", t.file)
        for key, value in raw.items():
            sub.used.add(key)
            if isinstance(value, str):
                if value not in HAZUS_CLASSES:
                    raise sub.error(key, f"unknown Hazus class {value!r} (known: {', '.join(HAZUS_CLASSES)})")
                fragility[key] = value
            elif isinstance(value, Mapping):
                entry = _Table(value, f"hazard.fragility.{key}", t.file)
                fragility[key] = (entry.number("median", required=True, low=0.0, low_open=True),
                                  entry.number("beta", required=True, low=0.0, low_open=True))
                entry.finish()
            elif value is False:
                fragility[key] = None                               # switch a default off
            else:
                raise sub.error(key, f"must be a Hazus class name or {{median = .., beta = ..}}, not {value!r}")
        rr_raw = t.get("repair_rate", None)
        repair = dict(DEFAULT_REPAIR_RATE)
        if rr_raw is not None:
            sub = _Table(rr_raw, "hazard.repair_rate", t.file)
            repair = {k: sub.number(k, required=True, low=0.0) for k in rr_raw}
        return cls(epicenter=epi, magnitude=magnitude, shakemap=shakemap,
                   vs30=t.number("vs30", 760.0, low=0.0, low_open=True),
                   mechanism=t.string("mechanism", "unspecified", choices=tuple(MECHANISMS)),
                   variability=t.boolean("variability", True),
                   correlation=t.string("correlation", "jayaram-baker-2009", choices=MODELS),
                   correlation_method=t.string("correlation_method", "auto",
                                               choices=("auto", "exact", "grid")),
                   damage_state=state, fragility=fragility, repair_rate=repair,
                   break_fraction=t.number("break_fraction", HAZUS_BREAK_FRACTION, low=0.0, high=1.0),
                   _file=t.file, _grid=grid, **extra)

    # ------------------------------------------------------------------ prepare
    def _node_fragility(self, el):
        """Per node: median (inf = does not shake apart), β and measure (PGA or SA1)."""
        from .fragility import CLASS_MEASURE

        user = {k: v for k, v in self.fragility.items() if k not in DEFAULT_FRAGILITY
                or self.fragility[k] != DEFAULT_FRAGILITY[k]}
        _check_names(user, el, "hazard.fragility", self._file)
        state = DAMAGE_STATES.index(self.damage_state)
        pairs, inverse = el.groups()
        entries = _lookup(self.fragility, None, None, None, (pairs, np.arange(len(pairs))))
        median = np.full(len(entries), np.inf)        # per (layer, kind) pair, then per node
        beta = np.ones(len(entries))
        measure = np.full(len(entries), "PGA", dtype=object)
        for i, entry in enumerate(entries):
            if entry is None:
                continue
            m, b = HAZUS_CLASSES[entry][state] if isinstance(entry, str) else entry
            median[i], beta[i] = m, b
            if isinstance(entry, str):
                measure[i] = CLASS_MEASURE.get(entry, "PGA")
        return median[inverse], beta[inverse], measure[inverse]

    def _site_motion(self, el, x, y, measure: str, where: str, vs30=None):
        """Median ln of ``measure`` at points, and σ_e (scalar) and σ_r (per point) of ln.

        ``measure``: PGA or SA1 (g) or PGV (cm/s).  Point source: BJF97 (PGV from SA1 as
        Hazus does); ShakeMap: the grid (PSA10 for SA1)."""
        if self._grid is not None:
            from .shakemap import ground_motion, to_lonlat

            lon, lat = to_lonlat(el.crs, x, y)
            name = {"SA1": "PSA10", "SA03": "PSA03", "SA30": "PSA30"}.get(measure, measure)
            ln, sig = ground_motion(self._grid, name, lon, lat, where)
            return ln, 0.0, np.where(np.isnan(sig), 0.0, sig)
        if measure not in ("PGA", "SA1", "PGV"):
            raise InputError(f"the point-source relation (Boore, Joyner & Fumal 1997) gives PGA, SA1 "
                             f"and PGV, not {measure}: use a ShakeMap ('hazard.shakemap')", self._file)
        epi = self.epicenter
        if el.project is not None:
            ex, ey = el.project(np.array([epi[0]]), np.array([epi[1]]))
            epi = [float(ex[0]), float(ey[0])]
        dist = np.hypot(x - epi[0], y - epi[1]) / 1000.0
        key = "pga" if measure == "PGA" else "sa1"
        ln = bjf97_ln(key, self.magnitude, dist, vs30, self.mechanism)
        if measure == "PGV":
            ln = np.log(386.4 / (2 * math.pi) / 1.65 * 2.54) + ln
        c = BJF97[key]
        return ln, c["sig_e"], np.full(len(ln), c["sig_r"])

    def prepare(self, system, compiled, el):
        if np.isnan(el.x).any() or np.isnan(el.y).any():
            raise InputError("the earthquake hazard needs coordinates 'x' and 'y' on every node",
                             "nodes.csv")
        _check_names({k: v for k, v in self.repair_rate.items() if DEFAULT_REPAIR_RATE.get(k) != v},
                     el, "hazard.repair_rate", self._file, edges=True)
        median, beta, measure = self._node_fragility(el)
        vs30 = el.nodes["vs30"].to_numpy(float) if "vs30" in el.nodes.columns else np.full(len(el.x), self.vs30)
        vs30 = np.where(np.isnan(vs30), self.vs30, vs30)
        src, dst = compiled.edge_src.astype(np.int64), compiled.edge_dst.astype(np.int64)
        mx, my = (el.x[src] + el.x[dst]) / 2, (el.y[src] + el.y[dst]) / 2
        evs30 = (vs30[src] + vs30[dst]) / 2 if len(src) else np.zeros(0)
        factor = _lookup(self.repair_rate, el.edge_layer, el.edge_kind, 0.0,
                         el.groups(edges=True)).astype(float)
        # Only shaken nodes and piped edges can fail: draw for those alone (keyed draws do
        # not depend on which other elements are drawn).
        sn = np.flatnonzero(np.isfinite(median))
        pe = np.flatnonzero(factor > 0)
        ln_n = np.zeros(len(sn))
        sig_e_n, sig_r_n = np.zeros(len(sn)), np.zeros(len(sn))
        groups = []                                   # (measure, positions in sn)
        for m in sorted(set(measure[sn])):
            pos = np.flatnonzero(measure[sn] == m)
            ln, se, sr = self._site_motion(el, el.x[sn[pos]], el.y[sn[pos]], m, "shaken nodes",
                                           vs30[sn[pos]])
            ln_n[pos], sig_e_n[pos], sig_r_n[pos] = ln, se, sr
            groups.append((m, pos))
        edge_measure = "PGV"
        ln_pgv, sig_e_e, sig_r_e = self._site_motion(el, mx[pe], my[pe], edge_measure,
                                                     "edge midpoints with a repair rate", evs30[pe])
        ln_rr = np.log(factor[pe] * 1e-4) + 2.25 * ln_pgv
        prep = {"median": median, "beta": beta, "measure": measure, "rr_factor": factor,
                "length_km": el.edge_length / 1000.0,
                "sn": sn, "pe": pe, "sn_keys": el.node_keys[sn], "pe_keys": el.edge_keys[pe],
                "sn_z0": (ln_n - np.log(median[sn])) / beta[sn], "sn_beta": beta[sn],
                "sn_sig_e": sig_e_n, "sn_sig_r": sig_r_n,
                "pe_ln_rr": ln_rr, "pe_len": el.edge_length[pe] / 1000.0,
                "pe_sig_e": np.full(len(pe), sig_e_e) if np.isscalar(sig_e_e) else sig_e_e,
                "pe_sig_r": sig_r_e, "fields": None, "compiled_edges": (src, dst)}
        if self.variability and self.correlation != "none":
            prep["fields"] = self._fields(el, sn, groups, pe, mx, my)
        return prep

    def _fields(self, el, sn, groups, pe, mx, my):
        """Correlated residual samplers: one per node measure group, one for the edges."""
        from .correlation import jb2009_range_km, make_field

        node_fields = [(pos, make_field(el.x[sn[pos]], el.y[sn[pos]], jb2009_range_km(m),
                                        el.node_keys[sn[pos]], f"nodes-{m}", self.correlation_method))
                       for m, pos in groups if len(pos)]
        edge_field = make_field(mx[pe], my[pe], jb2009_range_km("PGV"), el.edge_keys[pe], "edges-PGV",
                                self.correlation_method) if len(pe) else None
        return {"nodes": node_fields, "edges": edge_field}

    # ------------------------------------------------------------------ residuals
    def _eps(self, prep, salts2, salts3, batch: bool):
        """Standard normal intra-event residuals at the shaken nodes and piped edges:
        independent keyed draws (``correlation = "none"``) or correlated fields."""
        fields = prep["fields"]
        if fields is None:
            if batch:
                return (ndtri(keyed_uniform(prep["sn_keys"][None, :], salts2)),
                        ndtri(keyed_uniform(prep["pe_keys"][None, :], salts3)))
            return (ndtri(keyed_uniform(prep["sn_keys"], salts2)),
                    ndtri(keyed_uniform(prep["pe_keys"], salts3)))
        s2 = np.asarray(salts2, np.uint64).reshape(-1)
        s3 = np.asarray(salts3, np.uint64).reshape(-1)
        eps_n = np.zeros((len(s2), len(prep["sn"])))
        for pos, f in fields["nodes"]:
            eps_n[:, pos] = f.draw(s2)
        eps_e = fields["edges"].draw(s3) if fields["edges"] is not None else np.zeros((len(s3), 0))
        return (eps_n, eps_e) if batch else (eps_n[0], eps_e[0])

    def ground_motion(self, prep, draws):
        """ln PGA (g) per node and ln PGV (cm/s) per edge midpoint for one sample, shapes
        (n,) and (m,), every site drawn with this sample's inter-event term and intra-event
        residuals (keyed like :meth:`draw`'s; with correlation, from fields over all nodes and
        all edges, so values at the shaken sites differ from :meth:`draw`'s)."""
        el = prep["elements"]
        gm = prep.get("gm")
        if gm is None:
            compiled = prep["compiled_edges"]
            src, dst = compiled
            mx, my = (el.x[src] + el.x[dst]) / 2, (el.y[src] + el.y[dst]) / 2
            if self._grid is None:
                vs30 = el.nodes["vs30"].to_numpy(float) if "vs30" in el.nodes.columns else np.full(len(el.x), self.vs30)
                vs30 = np.where(np.isnan(vs30), self.vs30, vs30)
                evs30 = (vs30[src] + vs30[dst]) / 2 if len(src) else np.zeros(0)
            else:
                vs30 = evs30 = None
            gm = {"nodes": self._site_motion(el, el.x, el.y, "PGA", "nodes", vs30),
                  "edges": self._site_motion(el, mx, my, "PGV", "edge midpoints", evs30), "fields": None}
            if self.variability and self.correlation != "none":
                from .correlation import jb2009_range_km, make_field

                gm["fields"] = (make_field(el.x, el.y, jb2009_range_km("PGA"), el.node_keys, "nodes-PGA",
                                           self.correlation_method),
                                make_field(mx, my, jb2009_range_km("PGV"), el.edge_keys, "edges-PGV",
                                           self.correlation_method) if len(mx) else None)
            prep["gm"] = gm
        (ln_pga, se_n, sr_n), (ln_pgv, se_e, sr_e) = gm["nodes"], gm["edges"]
        if self.variability:
            event = draws.rng.standard_normal()
            if gm["fields"] is None:
                eps_n = ndtri(keyed_uniform(el.node_keys, draws.salts[2]))
                eps_e = ndtri(keyed_uniform(el.edge_keys, draws.salts[3]))
            else:
                fn, fe = gm["fields"]
                eps_n = fn.draw(draws.salts[2:3])[0]
                eps_e = fe.draw(draws.salts[3:4])[0] if fe is not None else np.zeros(0)
            ln_pga = ln_pga + event * se_n + sr_n * eps_n
            ln_pgv = ln_pgv + event * se_e + sr_e * eps_e
        return ln_pga, ln_pgv

    # ------------------------------------------------------------------ draws
    def draw(self, prep, draws, compiled, scale_nodes, scale_edges):
        sn, pe = prep["sn"], prep["pe"]
        z = prep["sn_z0"] - np.log(scale_nodes[sn]) / prep["sn_beta"]
        ln_rr = prep["pe_ln_rr"] - np.log(scale_edges[pe])
        if self.variability:
            # The same draws as ground_motion(), restricted to the elements that can fail.
            event = draws.rng.standard_normal()
            eps_n, eps_e = self._eps(prep, draws.salts[2], draws.salts[3], batch=False)
            z = z + (event * prep["sn_sig_e"] + prep["sn_sig_r"] * eps_n) / prep["sn_beta"]
            ln_rr = ln_rr + 2.25 * (event * prep["pe_sig_e"] + prep["pe_sig_r"] * eps_e)
        nodes = np.zeros(compiled.n_nodes, bool)
        # P(fail) = Φ(z): fail when the keyed uniform falls below it.
        nodes[sn] = keyed_uniform(prep["sn_keys"], draws.salts[0]) < ndtr(z)
        p_edge = -np.expm1(-self.break_fraction * np.exp(ln_rr) * prep["pe_len"])
        edges = np.zeros(compiled.n_edges, bool)
        edges[pe] = keyed_uniform(prep["pe_keys"], draws.salts[1]) < p_edge
        return nodes, edges

    def draw_block(self, prep, draws, compiled):
        """:meth:`draw` for B samples at once on (B, k) arrays: the same element-wise
        arithmetic, so the same results, with numpy's loop overhead paid once per block (and
        the GIL released inside the long loops, which lets threads overlap)."""
        sn, pe = prep["sn"], prep["pe"]
        salts = np.stack([d.salts for d in draws])                       # (B, 4) uint64
        z = np.broadcast_to(prep["sn_z0"], (len(draws), len(sn)))
        ln_rr = np.broadcast_to(prep["pe_ln_rr"], (len(draws), len(pe)))
        if self.variability:
            event = np.array([d.rng.standard_normal() for d in draws])[:, None]
            eps_n, eps_e = self._eps(prep, salts[:, 2:3], salts[:, 3:4], batch=True)
            z = z + (event * prep["sn_sig_e"] + prep["sn_sig_r"] * eps_n) / prep["sn_beta"]
            ln_rr = ln_rr + 2.25 * (event * prep["pe_sig_e"] + prep["pe_sig_r"] * eps_e)
        nodes = keyed_uniform(prep["sn_keys"][None, :], salts[:, 0:1]) < ndtr(z)
        p_edge = -np.expm1(-self.break_fraction * np.exp(ln_rr) * prep["pe_len"])
        edges = keyed_uniform(prep["pe_keys"][None, :], salts[:, 1:2]) < p_edge
        return [(sn[nodes[b]], pe[edges[b]]) for b in range(len(draws))]

    def compiled_plan(self, prep, compiled):
        return SamplingPlan(
            PlanPart(1, prep["sn"], prep["sn_keys"], prep["sn_z0"], prep["sn_sig_e"], prep["sn_sig_r"],
                     prep["sn_beta"], s_fail=0, s_gm=2),
            PlanPart(2, prep["pe"], prep["pe_keys"], prep["pe_ln_rr"], prep["pe_sig_e"], prep["pe_sig_r"],
                     prep["pe_len"], s_fail=1, s_gm=3),
            variability=bool(self.variability), break_fraction=float(self.break_fraction))

    def plan_inputs(self, prep, salts, normal):
        if not self.variability:
            return np.zeros(len(salts)), None, None
        if prep["fields"] is None:
            return normal, None, None                 # keyed residuals, drawn in compiled code
        return normal, *self._eps_parts(prep, salts[:, 2], salts[:, 3])

    def _eps_parts(self, prep, s2, s3):
        """:meth:`_eps` (batch) for the compiled path: per part (nodes, edges) the residuals
        without the grid fields' nugget terms, (B, k), and per element the nugget's standard
        deviation, or -1 where the residual is complete (an exact field).  The compiled loop
        adds ``nugget · Φ⁻¹(keyed uniform of the element's key and the residual salt)``, the
        normal GridField.draw adds, only for the elements whose draw is close to its threshold;
        the fields' site keys are the plan's keys (checked)."""
        fields = prep["fields"]
        from .correlation import GridField

        def split(f, keys, salts):
            if (isinstance(f, GridField) and f.keys.size and np.array_equal(f.keys, keys)
                    and np.isfinite(f.nugget).all()):
                return f.draw_base(salts), f.nugget
            return f.draw(salts), np.full(f.n_sites, -1.0)

        s2 = np.asarray(s2, np.uint64).reshape(-1)
        s3 = np.asarray(s3, np.uint64).reshape(-1)
        eps_n = np.zeros((len(s2), len(prep["sn"])))
        nug_n = np.full(len(prep["sn"]), -1.0)
        for pos, f in fields["nodes"]:
            eps_n[:, pos], nug_n[pos] = split(f, prep["sn_keys"][pos], s2)
        if fields["edges"] is not None:
            eps_e, nug_e = split(fields["edges"], prep["pe_keys"], s3)
        else:
            eps_e, nug_e = np.zeros((len(s3), 0)), np.zeros(0)
        return (eps_n, nug_n), (eps_e, nug_e)

    def describe(self):
        d = super().describe()
        return {k: v for k, v in d.items() if v is not None}


class _TableParser:
    """``type = "table"``: per-asset damage tables (cascade/damage_table.py imports this module)."""

    @staticmethod
    def parse(t, base):
        from .damage_table import TableHazard

        return TableHazard.parse(t, base)


PARSERS = {"random": RandomHazard, "targeted": TargetedHazard, "region": RegionHazard,
           "flood": FloodHazard, "earthquake": EarthquakeHazard, "table": _TableParser}


def _parser(kind: str):
    """The hazard class of a type; ``rainfall`` lives in :mod:`cascade.rainfall` (it imports
    this module's helpers, so it is imported on first use)."""
    if kind == "rainfall":
        from .rainfall import RainfallHazard

        return RainfallHazard
    return PARSERS[kind]


# --------------------------------------------------------------------------- scenario
def _fingerprint(compiled: CompiledSystem) -> str:
    facts = _id_facts(compiled)
    if "fingerprint" not in facts:
        h = hashlib.blake2b(digest_size=16)
        h.update("\0".join(map(str, compiled.node_ids)).encode())
        h.update(b"\1")
        h.update("\0".join(map(str, compiled.edge_ids)).encode())
        facts["fingerprint"] = h.hexdigest()
    return facts["fingerprint"]


def _element_keys_of(compiled: CompiledSystem) -> tuple[np.ndarray, np.ndarray]:
    """:func:`element_keys` of the nodes and edges, hashed once per compiled system."""
    facts = _id_facts(compiled)
    if "keys" not in facts:
        facts["keys"] = (element_keys(compiled.node_ids), element_keys(compiled.edge_ids))
    return facts["keys"]


#: Per compiled system, what depends on its ids only (element keys, fingerprint), so that
#: preparing several scenarios on one system (risk, redundancy, report) hashes its ids once.
#: Checked against the id arrays themselves: a compiled system given new ids starts afresh.
_ID_FACTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _id_facts(compiled: CompiledSystem) -> dict:
    got = _ID_FACTS.get(compiled)
    if got is None or got["ids"][0] is not compiled.node_ids or got["ids"][1] is not compiled.edge_ids:
        got = {"ids": (compiled.node_ids, compiled.edge_ids)}
        try:
            _ID_FACTS[compiled] = got
        except TypeError:           # not weakly referable: computed again next time
            pass
    return got


class Scenario:
    """A hazard scenario read from TOML (see :func:`load_scenario`).

    Attributes
    ----------
    path : pathlib.Path or None
    name : str
    system : pathlib.Path or None
        The system directory the file names, resolved against the file's folder.
    hazard : Hazard
        The hazard and its parameters (``hazard.type`` is its name).
    seed : int
    samples : int or None
        The number of samples the file suggests.
    annual_rate : float or None
        Occurrences per year (``[scenario] annual_rate``, or 1 / ``return_period``), for
        ``cascade risk``.
    """

    def __init__(self, hazard: Hazard, seed: int = 0, name: str = "scenario",
                 system: Path | None = None, samples: int | None = None, path: Path | None = None,
                 description: str = "", annual_rate: float | None = None,
                 reproject: bool = False):
        self.hazard, self.seed, self.name = hazard, int(seed), name
        self.reproject = bool(reproject)       # a geographic system: work in its UTM zone
        self.system, self.samples, self.path, self.description = system, samples, path, description
        self.annual_rate = annual_rate
        self._cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._last: tuple[str, dict] | None = None

    def check_system(self, system: InfrastructureSystem, system_dir=None) -> None:
        """Refuse a system other than the one the file's ``[scenario] system`` names.

        The system matches when it is that directory, or has the same name (its ``system.toml``
        name, else its folder name: a copy of the system matches).  A file without ``system``
        fits any system.

        Raises
        ------
        InputError
            One line naming the scenario file, the system it names and the one given.
        """
        if self.system is None:
            return
        if system_dir is not None and Path(system_dir).resolve() == self.system:
            return
        expected = self.system.name
        toml = self.system / "system.toml"
        if toml.is_file():
            try:
                with open(toml, "rb") as fh:
                    expected = str(tomllib.load(fh).get("system", {}).get("name", expected))
            except (OSError, tomllib.TOMLDecodeError, AttributeError):
                pass
        if expected != system.name:
            given = f" ({system_dir})" if system_dir is not None else ""
            raise InputError(f"[scenario] system names '{expected}' ({self.system}), but the system "
                             f"given is '{system.name}'{given}; use a scenario for this system or "
                             "remove the 'system' key", str(self.path) if self.path else None)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_cache")          # weak references do not pickle; `_last` travels instead
        state.pop("_memo", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._cache = weakref.WeakKeyDictionary()

    def __repr__(self):
        return f"Scenario({self.name!r}: {self.hazard.type}, seed {self.seed})"

    def prepare(self, system: InfrastructureSystem, compiled: CompiledSystem | None = None) -> dict:
        """Precompute what the hazard needs from ``system`` (distances, thresholds, rankings).

        Call once per system before :meth:`sample` (``run_ensemble`` does); the result is
        kept with the scenario, also when it is pickled to a Dask worker.
        """
        compiled = compiled if compiled is not None else compile_system(system)
        frame = None
        if self.hazard.uses_distances:
            from .crs import metric_frame

            frame = metric_frame(system.crs, system.nodes["x"], system.nodes["y"],
                                 f"the {self.hazard.type} hazard", self.reproject)
        elements = Elements.of(system, compiled, frame)
        prep = self.hazard.prepare(system, compiled, elements)
        prep["elements"] = elements
        self._cache[compiled] = prep
        self._last = (_fingerprint(compiled), prep)
        return prep

    def prepared_for(self, system: InfrastructureSystem, compiled: CompiledSystem) -> dict:
        """:meth:`prepare`, unless this scenario was prepared by this method for the same
        ``system`` object and ``compiled`` with the same hazard parameters (its ``repr``) and
        ``reproject``: then the kept result, compiled sampling plan included (``run_ensemble``
        calls this; a loop of runs pays the preparation once).  A system changed in place
        after its compile is not noticed here; pass a new ``compiled`` for it."""
        memo = self.__dict__.setdefault("_memo", weakref.WeakKeyDictionary())
        token = (repr(self.hazard), self.reproject)
        prep, kept = self._cache.get(compiled), memo.get(compiled)
        if (prep is not None and kept is not None and kept[1] == token and kept[0]() is system
                and kept[2] == id(prep)):   # and no prepare() for another system since
            return prep
        prep = self.prepare(system, compiled)
        try:
            memo[compiled] = (weakref.ref(system), token, id(prep))
        except TypeError:              # not weakly referable: prepared again every time
            pass
        return prep

    def _prepared(self, compiled: CompiledSystem) -> dict:
        prep = self._cache.get(compiled)
        if prep is None:
            if self._last is not None and self._last[0] == _fingerprint(compiled):
                prep = self._cache[compiled] = self._last[1]
            else:
                raise InputError(f"scenario '{self.name}' is not prepared for system "
                                 f"'{compiled.name}': call scenario.prepare(system, compiled) first")
        return prep

    def sample(self, compiled: CompiledSystem, sample_index: int, *, immune=(),
               fragility_scale: Mapping[str, float] | None = None,
               seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The direct failures of sample ``sample_index``.

        Parameters
        ----------
        compiled : CompiledSystem
            A system this scenario was prepared for (:meth:`prepare`).
        sample_index : int
        immune : iterable of str
            Node or edge ids that never fail directly (hardened).
        fragility_scale : dict of str to float, optional
            Per element id, a factor on its fragility median (earthquake), flood depth
            threshold (flood) or, for pipes, a divisor of the repair rate.  > 1 is stronger.
        seed : int, optional
            Overrides the scenario's seed.

        Returns
        -------
        node_idx, edge_idx : ndarray of compiled.index_dtype
            Sorted indices of the nodes and edges the hazard fails directly.
        """
        prep = self._prepared(compiled)
        draws = Draws.of(self.seed if seed is None else seed, sample_index)
        scale_n = np.ones(compiled.n_nodes)
        scale_e = np.ones(compiled.n_edges)
        if fragility_scale:
            for name, factor in fragility_scale.items():
                if not (isinstance(factor, (int, float)) and factor > 0):
                    raise InputError(f"fragility_scale of '{name}' must be a positive number")
            ids = list(fragility_scale)
            nodes, edges = compiled.split_ids(ids)
            lookup_n = {str(compiled.node_ids[i]): i for i in nodes}
            lookup_e = {str(compiled.edge_ids[i]): i for i in edges}
            for name, factor in fragility_scale.items():
                if name in lookup_n:
                    scale_n[lookup_n[name]] *= factor
                else:
                    scale_e[lookup_e[name]] *= factor
        node_mask, edge_mask = self.hazard.draw(prep, draws, compiled, scale_n, scale_e)
        immune = list(immune)
        if immune:
            inode, iedge = compiled.split_ids(immune)
            node_mask = node_mask.copy()
            edge_mask = edge_mask.copy()
            node_mask[inode] = False
            edge_mask[iedge] = False
        return (np.flatnonzero(node_mask).astype(compiled.index_dtype),
                np.flatnonzero(edge_mask).astype(compiled.index_dtype))

    def run(self, compiled: CompiledSystem, ws, sample_index: int, *, immune=(),
            fragility_scale: Mapping[str, float] | None = None,
            seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``sample_index`` and run its cascade in ``ws`` (a :class:`Workspace` of
        ``compiled``, or of a system that extends it by appended edges and dependency rows).

        A hazard with ``feedback`` (rainfall: flooded substations stop drainage pumps, the
        water rises) runs together with the cascade to their common fixpoint; any other
        hazard is :meth:`sample` then ``ws.run``.  Returns the direct failures (sorted node
        and edge indices); ``ws`` holds the final state.
        """
        if getattr(self.hazard, "feedback", False):
            prep = self._prepared(compiled)
            draws = Draws.of(self.seed if seed is None else seed, sample_index)
            return self.hazard.settle(prep, draws, compiled, ws, immune=tuple(immune),
                                      fragility_scale=fragility_scale)
        nodes, edges = self.sample(compiled, sample_index, immune=immune,
                                   fragility_scale=fragility_scale, seed=seed)
        ws.run(nodes, edges)
        return nodes, edges

    def sample_block(self, compiled: CompiledSystem, start: int, stop: int, *,
                     seed: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[sample(compiled, i, seed=seed) for i in range(start, stop)]``, vectorised
        across the samples where the hazard allows (no ``immune``/``fragility_scale``)."""
        prep = self._prepared(compiled)
        seed = self.seed if seed is None else seed
        draws = [Draws.of(seed, i) for i in range(start, stop)]
        idx = compiled.index_dtype
        return [(n.astype(idx), e.astype(idx)) for n, e in self.hazard.draw_block(prep, draws, compiled)]

    def describe(self) -> dict:
        """The scenario as plain data (for JSON output)."""
        return {"name": self.name, "file": str(self.path) if self.path else None,
                "seed": self.seed, "hazard": self.hazard.describe()}


def load_scenario(path: "str | Path", reproject: bool = False) -> Scenario:
    """Read and validate a scenario file.

    The file has a ``[scenario]`` table (``name``, ``system`` relative to the file,
    ``seed``, optional ``samples`` and ``description``) and a ``[hazard]`` table whose
    ``type`` is one of ``random``, ``targeted``, ``region``, ``flood``, ``earthquake``,
    ``table``, ``rainfall`` with that hazard's keys (see the hazard classes and the README's
    scenario section).  ``reproject``: a system in a geographic CRS is worked on in the UTM zone of
    its centroid (else hazards that measure distances refuse it; see :mod:`cascade.crs`).

    Raises
    ------
    InputError
        On a missing file, malformed TOML, an unknown key, a missing key or a bad value,
        naming the file and the key.
    """
    path = Path(path)
    file = str(path)
    try:
        with reading(path, "scenario file"), open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"malformed TOML: {exc}", file) from None
    top = _Table(data, "", file)
    scen = _Table(top.get("scenario", required=True), "scenario", file)
    haz = _Table(top.get("hazard", required=True), "hazard", file)
    top.finish()
    name = scen.string("name", path.stem)
    system = scen.string("system")
    seed = scen.number("seed", required=True, low=0, integer=True)
    samples = scen.number("samples", low=1, integer=True)
    description = scen.string("description", "")
    # at most 10^6 events a year (one every 32 s): more is a typo, and overflows the risk sums
    rate = scen.number("annual_rate", low=0.0, low_open=True, high=MAX_ANNUAL_RATE)
    period = scen.number("return_period", low=1.0 / MAX_ANNUAL_RATE)
    if rate is not None and period is not None:
        raise InputError("give one of 'scenario.annual_rate' and 'scenario.return_period', not both", file)
    scen.finish()
    kind = haz.string("type", required=True, choices=HAZARDS)
    hazard = _parser(kind).parse(haz, path.parent)
    haz.finish()
    return Scenario(hazard, seed=seed, name=name,
                    system=(path.parent / system).resolve() if system else None,
                    samples=samples, path=path, description=description, reproject=reproject,
                    annual_rate=float(rate) if rate is not None else (1.0 / period if period else None))
