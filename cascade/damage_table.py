"""Per-asset damage tables: ``[hazard] type = "table"``, ``file = "PATH"``.

The CSV (a path relative to the scenario file) comes in one of three layouts, told apart by
its header:

``id,probability``
    Each listed node or edge fails with its probability, independently in every sample
    (the Shelby County INDP data and most published per-asset studies hand this over).
pyincore damage output: ``guid,LS_0,LS_1,LS_2,DS_0,DS_1,DS_2,DS_3[,haz_expose]``
    The CSV that pyincore's damage analyses write (column names since pyincore 0.9.3:
    ``LS_k`` = P(limit state k+1 exceeded), ``DS_k`` = P(damage state k); IN-CORE manual,
    "pyIncore upgrade guide").  The scenario's ``damage_state = "DS_2"`` says which damage
    state and worse mean out of service: P = DS_2 + DS_3 (from the DS columns, else LS_1).
    The asset id is the ``guid`` column (``id_column`` overrides), matched to node and edge ids.
``id,median,beta,measure``
    A lognormal fragility per asset, P(fail | IM) = Φ(ln(IM / median) / β), applied to the
    scenario's ground motion: the keys of the earthquake hazard (``epicenter`` and
    ``magnitude``, or ``shakemap``; ``correlation``, ``variability``).  ``measure``: PGA or
    SA1 (g), PGV (cm/s), SA03 / SA30 (g, ShakeMap only).  Nodes take the motion at their
    coordinates, edges at their midpoints.

Unknown ids, probabilities outside [0, 1], non-numbers and duplicate rows are errors naming
the file and line.  Draws are keyed by element id as in every hazard of
:mod:`cascade.hazards`, so common random numbers hold.
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from .errors import InputError, reading
from .hazards import EarthquakeHazard, Hazard, RandomHazard, _Table, keyed_uniform

MEASURE_ALIASES = {"PGA": "PGA", "PGV": "PGV", "SA1": "SA1", "SA(1.0)": "SA1", "SA10": "SA1",
                   "PSA10": "SA1", "SA03": "SA03", "SA(0.3)": "SA03", "PSA03": "SA03",
                   "SA30": "SA30", "SA(3.0)": "SA30", "PSA30": "SA30"}


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    with reading(path, "damage table"):
        text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    numbered = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not numbered:
        raise InputError("empty damage table", str(path))
    header = [c.strip() for c in numbered[0][1]]
    return header, numbered[1:]


def _number(text: str, what: str, file: str, line: int) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, not {text!r}", file, line) from None
    if not math.isfinite(value):
        raise InputError(f"{what} must be finite, not {text!r}", file, line)
    return value


def _probability(text, what, file, line) -> float:
    p = _number(text, what, file, line)
    if not 0.0 <= p <= 1.0:
        raise InputError(f"{what} must be in [0, 1], not {p:g}", file, line)
    return p


def read_table(path: Path, damage_state: str | None = None, id_column: str | None = None) -> dict:
    """Read a damage table: ``{"layout": "probability" | "fragility", "rows": [(line, id, ...)]}``.

    ``probability`` rows are (line, id, p); ``fragility`` rows (line, id, median, beta, measure).
    """
    file = str(path)
    header, rows = _read_rows(path)
    low = [h.lower() for h in header]
    ls_cols = [h for h in header if re.fullmatch(r"LS_\d+", h)]
    ds_cols = [h for h in header if re.fullmatch(r"DS_\d+", h)]
    seen: dict[str, int] = {}

    def take_id(row, col, line):
        if col >= len(row) or not row[col].strip():
            raise InputError("missing id", file, line)
        name = row[col].strip()
        if name in seen:
            raise InputError(f"duplicate row for '{name}' (first on line {seen[name]})", file, line)
        seen[name] = line
        return name

    def cell(row, col, line, what):
        if col >= len(row):
            raise InputError(f"missing {what}", file, line)
        return row[col].strip()

    if ls_cols or ds_cols:                                     # pyincore damage output
        key = id_column or ("guid" if "guid" in header else "id")
        if key not in header:
            raise InputError(f"no id column '{key}' (columns: {', '.join(header)})", file, 1)
        if damage_state is None:
            raise InputError("a pyincore damage table needs 'hazard.damage_state' (e.g. \"DS_2\": "
                             "that damage state and worse are out of service)", file)
        m = re.fullmatch(r"DS_(\d+)", damage_state)
        if not m or int(m.group(1)) < 1:
            raise InputError(f"'hazard.damage_state' must be DS_1, DS_2, ... , not {damage_state!r}", file)
        k = int(m.group(1))
        ds_worse = [f"DS_{j}" for j in range(k, len(ds_cols))]
        if ds_cols:
            if f"DS_{k}" not in header:
                raise InputError(f"no column DS_{k} (damage states: {', '.join(ds_cols)})", file, 1)
            cols = [header.index(c) for c in ds_worse]
        else:
            if f"LS_{k - 1}" not in header:
                raise InputError(f"no column LS_{k - 1} (limit states: {', '.join(ls_cols)})", file, 1)
            cols = [header.index(f"LS_{k - 1}")]
        idc = header.index(key)
        out = []
        for line, row in rows:
            name = take_id(row, idc, line)
            parts = [_probability(cell(row, c, line, header[c]), header[c], file, line) for c in cols]
            p = sum(parts)
            if p > 1.0 + 1e-6:
                raise InputError(f"{' + '.join(header[c] for c in cols)} = {p:g} exceeds 1", file, line)
            out.append((line, name, min(p, 1.0)))
        return {"layout": "probability", "rows": out}
    if low[:2] == ["id", "probability"] and len(low) == 2:
        out = []
        for line, row in rows:
            if len(row) != 2:
                raise InputError(f"expected 2 fields (id,probability), found {len(row)}", file, line)
            out.append((line, take_id(row, 0, line), _probability(row[1].strip(), "probability", file, line)))
        return {"layout": "probability", "rows": out}
    if low == ["id", "median", "beta", "measure"]:
        out = []
        for line, row in rows:
            if len(row) != 4:
                raise InputError(f"expected 4 fields (id,median,beta,measure), found {len(row)}", file, line)
            name = take_id(row, 0, line)
            median = _number(row[1].strip(), "median", file, line)
            beta = _number(row[2].strip(), "beta", file, line)
            if median <= 0 or beta <= 0:
                raise InputError("median and beta must be > 0", file, line)
            measure = MEASURE_ALIASES.get(row[3].strip().upper().replace(" ", ""))
            if measure is None:
                raise InputError(f"unknown measure {row[3].strip()!r} (use PGA, PGV, SA1, SA03 or SA30)",
                                 file, line)
            out.append((line, name, median, beta, measure))
        return {"layout": "fragility", "rows": out}
    raise InputError(f"unrecognised header '{','.join(header)}': use id,probability; pyincore's "
                     "guid,LS_0,...,DS_0,...; or id,median,beta,measure", file, 1)


def _resolve(rows, compiled, file):
    """Split rows into node and edge indices; an unknown id is an error with its line."""
    node_of = {str(n): i for i, n in enumerate(compiled.node_ids)}
    edge_of = {str(e): i for i, e in enumerate(compiled.edge_ids)}
    nodes, edges = [], []
    for r in rows:
        line, name = r[0], r[1]
        if name in node_of:
            nodes.append((node_of[name],) + tuple(r[2:]))
        elif name in edge_of:
            edges.append((edge_of[name],) + tuple(r[2:]))
        else:
            raise InputError(f"unknown id '{name}': no node or edge of the system has it", file, line)
    return nodes, edges


@dataclass
class TableHazard(Hazard):
    """Per-asset failure probabilities or fragilities from a CSV (see the module docstring)."""

    file: str = ""
    damage_state: str | None = None
    id_column: str | None = None
    layout: str = "probability"
    type: str = "table"
    _file: str = ""
    _rows: Any = None
    _path: str = ""

    @classmethod
    def parse(cls, t: _Table, base: Path):
        name = t.string("file", required=True)
        path = (base / name).resolve()
        state = t.string("damage_state")
        id_column = t.string("id_column")
        header, _ = _read_rows(path)
        if [h.lower() for h in header] == ["id", "median", "beta", "measure"]:
            return FragilityTableHazard.parse_table(t, base, name, path)
        data = read_table(path, state, id_column)
        for key in ("epicenter", "magnitude", "shakemap"):
            if t.has(key):
                raise t.error(key, "only a fragility table (id,median,beta,measure) uses ground motion")
        return cls(file=name, damage_state=state, id_column=id_column, layout=data["layout"],
                   _file=t.file, _rows=data["rows"], _path=str(path))

    def prepare(self, system, compiled, el):
        nodes, edges = _resolve(self._rows, compiled, self._path)
        pn, pe = np.zeros(compiled.n_nodes), np.zeros(compiled.n_edges)
        for i, p in nodes:
            pn[i] = p
        for i, p in edges:
            pe[i] = p
        return {"pn": pn, "pe": pe}

    # The same keyed draw as a random hazard's: each element fails with its own probability.
    draw = RandomHazard.draw
    compiled_plan = RandomHazard.compiled_plan

    def describe(self):
        return {"type": self.type, "file": self.file, "layout": self.layout,
                "damage_state": self.damage_state, "rows": len(self._rows or ())}


@dataclass
class FragilityTableHazard(EarthquakeHazard):
    """``id,median,beta,measure`` per asset on the earthquake hazard's ground motion; only the
    listed assets can fail (no Hazus defaults, no pipe repair rates)."""

    file: str = ""
    type: str = "table"
    _rows: Any = None
    _path: str = ""

    @classmethod
    def parse_table(cls, t: _Table, base: Path, name: str, path: Path):
        data = read_table(path)
        for key in ("fragility", "repair_rate", "damage_state", "id_column", "break_fraction"):
            if t.has(key):
                raise t.error(key, "does not apply to a fragility table (id,median,beta,measure)")
        hz = EarthquakeHazard.parse.__func__(cls, t, base, file=name, _rows=data["rows"], _path=str(path))
        hz.fragility, hz.repair_rate = {}, {}
        return hz

    def prepare(self, system, compiled, el):
        nodes, edges = _resolve(self._rows, compiled, self._path)
        src, dst = compiled.edge_src.astype(np.int64), compiled.edge_dst.astype(np.int64)
        if np.isnan(el.x).any() or np.isnan(el.y).any():
            raise InputError("a fragility table needs coordinates 'x' and 'y' on every node", "nodes.csv")
        vs30 = el.nodes["vs30"].to_numpy(float) if "vs30" in el.nodes.columns else np.full(len(el.x), self.vs30)
        vs30 = np.where(np.isnan(vs30), self.vs30, vs30)
        prep = {}
        for kind, rows, keys, x, y, v in (
                ("n", nodes, el.node_keys, el.x, el.y, vs30),
                ("e", edges, el.edge_keys, (el.x[src] + el.x[dst]) / 2, (el.y[src] + el.y[dst]) / 2,
                 (vs30[src] + vs30[dst]) / 2 if len(src) else np.zeros(0))):
            idx = np.array([r[0] for r in rows], np.int64)
            median = np.array([r[1] for r in rows], float)
            beta = np.array([r[2] for r in rows], float)
            measure = np.array([r[3] for r in rows], object)
            ln = np.zeros(len(idx))
            sig_e, sig_r = np.zeros(len(idx)), np.zeros(len(idx))
            fields = []
            for m in sorted(set(measure)):
                pos = np.flatnonzero(measure == m)
                where = "listed nodes" if kind == "n" else "listed edges' midpoints"
                a, se, sr = self._site_motion(el, x[idx[pos]], y[idx[pos]], m, where,
                                              None if self._grid is not None else v[idx[pos]])
                ln[pos], sig_e[pos], sig_r[pos] = a, se, sr
                if self.variability and self.correlation != "none" and len(pos):
                    from .correlation import jb2009_range_km, make_field

                    fields.append((pos, make_field(x[idx[pos]], y[idx[pos]], jb2009_range_km(m),
                                                   keys[idx[pos]], f"table-{kind}-{m}",
                                                   self.correlation_method)))
            prep[kind] = {"idx": idx, "keys": keys[idx], "z0": (ln - np.log(median)) / beta,
                          "beta": beta, "sig_e": sig_e, "sig_r": sig_r,
                          "fields": fields if self.variability and self.correlation != "none" else None}
        return prep

    @staticmethod
    def _eps_of(part, salt, batch):
        if part["fields"] is None:
            keys = part["keys"][None, :] if batch else part["keys"]
            return ndtri(keyed_uniform(keys, salt))
        salts = np.asarray(salt, np.uint64).reshape(-1)
        eps = np.zeros((len(salts), len(part["idx"])))
        for pos, f in part["fields"]:
            eps[:, pos] = f.draw(salts)
        return eps if batch else eps[0]

    def _z(self, part, event, salt, batch, scale=None):
        z = part["z0"] if scale is None else part["z0"] - np.log(scale[part["idx"]]) / part["beta"]
        if self.variability:
            z = z + (event * part["sig_e"] + part["sig_r"] * self._eps_of(part, salt, batch)) / part["beta"]
        return z

    def draw(self, prep, draws, compiled, scale_nodes, scale_edges):
        event = draws.rng.standard_normal() if self.variability else 0.0
        nodes = np.zeros(compiled.n_nodes, bool)
        edges = np.zeros(compiled.n_edges, bool)
        for part, out, s_fail, s_gm, scale in ((prep["n"], nodes, 0, 2, scale_nodes),
                                               (prep["e"], edges, 1, 3, scale_edges)):
            z = self._z(part, event, draws.salts[s_gm], False, scale)
            out[part["idx"]] = keyed_uniform(part["keys"], draws.salts[s_fail]) < ndtr(z)
        return nodes, edges

    def draw_block(self, prep, draws, compiled):
        salts = np.stack([d.salts for d in draws])
        event = np.array([d.rng.standard_normal() for d in draws])[:, None] if self.variability \
            else np.zeros((len(draws), 1))
        hits = []
        for part, s_fail, s_gm in ((prep["n"], 0, 2), (prep["e"], 1, 3)):
            z = self._z(part, event, salts[:, s_gm:s_gm + 1], True)
            z = np.broadcast_to(z, (len(draws), len(part["idx"])))
            hits.append(keyed_uniform(part["keys"][None, :], salts[:, s_fail:s_fail + 1]) < ndtr(z))
        return [(prep["n"]["idx"][hits[0][b]], prep["e"]["idx"][hits[1][b]]) for b in range(len(draws))]

    def compiled_plan(self, prep, compiled):
        from .hazards import PlanPart, SamplingPlan

        parts = [PlanPart(1, p["idx"], p["keys"], p["z0"], p["sig_e"], p["sig_r"], p["beta"],
                          s_fail=s_fail, s_gm=s_gm)
                 for p, s_fail, s_gm in ((prep["n"], 0, 2), (prep["e"], 1, 3))]
        return SamplingPlan(parts[0], parts[1], variability=bool(self.variability))

    def plan_inputs(self, prep, salts, normal):
        if not self.variability:
            return np.zeros(len(salts)), None, None
        eps = [None if p["fields"] is None else self._eps_of(p, salts[:, s:s + 1], True)
               for p, s in ((prep["n"], 2), (prep["e"], 3))]
        return normal, eps[0], eps[1]

    def ground_motion(self, prep, draws):
        raise NotImplementedError("ground_motion of a fragility table: use an earthquake scenario")

    def describe(self):
        return {"type": self.type, "file": self.file, "layout": "fragility",
                "shakemap": self.shakemap, "epicenter": self.epicenter, "magnitude": self.magnitude,
                "correlation": self.correlation, "variability": self.variability,
                "rows": len(self._rows or ())}
