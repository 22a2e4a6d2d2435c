"""A pandapower grid as a ``dcflow`` layer (the v2 format of docs/format.md): what pandapower's DC power flow sees.

The layer reproduces pandapower's ``rundcpp`` (Thurner et al. 2018, IEEE Trans. Power Systems
33(6)) on the intact grid: the same bus injections and, per island, the same branch flows
``flow = base * (theta_source - theta_target - shift) / reactance``.

Branch data are pandapower's own per-unit conversion (``pd2ppc``: ``_calc_line_parameter``,
``_calc_trafo_parameter`` with the T-model turned into a pi by ``_wye_delta``, tap changers in
``_calc_tap_from_dataframe``, three-winding transformers as three branches through a star bus),
taken from the PYPOWER branch table that ``rundcpp`` builds (``net._ppc["branch"]``); as in
PYPOWER's ``makeBdc`` (Zimmerman et al. 2011, "MATPOWER: steady-state operations, planning and
analysis tools", IEEE Trans. Power Systems 26(1)), the series susceptance of a branch is
``1 / (x * tap)`` and its phase shift enters as an injection, so the layer's ``reactance`` is
``x * tap`` and its ``shift`` the branch's ``SHIFT`` (degrees, source = from/hv side).

What each column holds (MW everywhere; ``base = net.sn_mva``):

- ``demand``: per bus, every consumption that pandapower's DC model counts at that bus: loads
  ``p_mw * scaling``, storage ``p_mw * scaling`` (charging), wards and extended wards
  ``ps_mw + pz_mw``, shunts ``p_mw * step * (vn_bus / vn_shunt)^2`` (their active power at
  1 p.u.), and generators whose output is negative;
- ``supply`` and ``dispatch``: per bus, the sum over its generating units of
  ``supply`` = the most it can give and ``dispatch`` = what it gives in ``rundcpp``:
  ``gen``: dispatch = ``res_gen.p_mw`` (the setpoint ``p_mw * scaling``, or the balance for a
  slack gen), supply = ``max_p_mw`` (assumed = dispatch where missing: no headroom);
  ``ext_grid``: dispatch = ``res_ext_grid.p_mw`` (the slack's balance), supply = ``max_p_mw``
  (assumed = the layer's whole consumption where missing: an external grid can carry it all);
  ``sgen``: dispatch = ``p_mw * scaling``, supply = ``max_p_mw`` when the unit is
  ``controllable`` and has one, else its dispatch (weather-driven units have no headroom);
  loads or storage with negative power (supply = dispatch = the power they give).
  A supply is never below its dispatch (``max_p_mw`` below the setpoint is raised to it);
- ``capacity``: lines ``max_i_ka * df * parallel * vn_kv * sqrt(3)`` (vn_kv of the from-bus),
  two-winding transformers ``sn_mva * df * parallel``, each branch of a three-winding transformer
  the ``sn_*_mva`` of its side; empty (unlimited) for impedances, switches without ``in_ka``, and
  wherever the rating is missing. Ratings in MVA at nominal voltage are taken as MW limits
  (DC model: unity power factor, 1 p.u. voltage);
- closed bus-bus switches: pandapower fuses their buses (or models ``z_ohm > 0`` as a branch); here
  each is an edge (so that it can fail) with pandapower's reactance when ``z_ohm > 0``, else
  ``SWITCH_REACTANCE`` (10^-6) times the smallest branch reactance of the grid: the flows differ
  from those with fused buses by about 10^-6 relative.

Not carried (a note names them when present): motors, asymmetric loads and generators, DC lines,
FACTS devices and the internal branch of an extended ward (no DC flow in ``rundcpp`` either).
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from ..errors import InputError
from .imports import ImportedLayer, checked_demand, edge_table
from .pandapower import _in_service, _table, bus_coordinates

SWITCH_REACTANCE = 1e-6      # x the smallest |reactance| of the grid: a closed bus-bus switch without impedance
UNSUPPORTED = ("motor", "asymmetric_load", "asymmetric_sgen", "dcline", "svc", "ssc", "tcsc", "vsc",
               "line_dc", "load_dc", "source_dc")


def _pandapower_net(tables):
    """A real pandapowerNet holding ``tables`` (a :class:`cascade.io.ppjson.SafeNet` or a net).

    The file was read as data (no object of it is ever built); here pandapower's own empty
    network receives copies of its tables and plain settings, so ``rundcpp`` can run on them.
    """
    import pandapower as pp

    net = pp.create_empty_network()
    for name, value in tables.items():
        if str(name).startswith("_") or name not in net:
            continue
        if isinstance(value, pd.DataFrame):
            net[name] = value.copy()
        elif isinstance(value, (int, float, str, bool)) and not isinstance(net[name], pd.DataFrame):
            net[name] = value
    # What pandapower.from_json does after reading: bring a file of an older version up to date
    # (columns added since, such as a transformer's tap_dependency_table).
    pp.convert_format(net)
    return net


def _run_dc(net, source: str):
    """``rundcpp`` on a pandapower copy of ``net``; the copy holds the results and the PYPOWER
    tables."""
    import pandapower as pp

    net = _pandapower_net(net)
    logger = logging.getLogger("pandapower")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp.rundcpp(net, numba=False)
    except Exception as exc:  # pandapower raises many kinds; the user needs one line
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(f"pandapower's DC power flow (rundcpp) fails on it: {message}; import it with "
                         "--rule source for a layer without flows", source) from None
    finally:
        logger.setLevel(level)
    return net


def _active(net, name: str, bus_col: str = "bus") -> pd.DataFrame:
    """In-service rows of a table whose bus is in service (pandapower's ``_is_elements``)."""
    table = _in_service(_table(net, name))
    if len(table) == 0:
        return table
    live = set(net.bus.index[net.bus["in_service"].fillna(True).astype(bool)])
    return table[table[bus_col].astype(int).isin(live)]


def _scaled(table: pd.DataFrame) -> np.ndarray:
    scaling = table["scaling"].to_numpy(float) if "scaling" in table else 1.0
    return table["p_mw"].to_numpy(float) * scaling


def _column(table: pd.DataFrame, name: str) -> np.ndarray:
    return table[name].to_numpy(float) if name in table else np.full(len(table), np.nan)


class _Buses:
    """Per-bus sums of demand, supply and dispatch (MW)."""

    def __init__(self, index: pd.Index):
        self.index = index
        self.demand = pd.Series(0.0, index=index)
        self.supply = pd.Series(0.0, index=index)
        self.dispatch = pd.Series(0.0, index=index)

    def _add(self, series: pd.Series, bus, values) -> None:
        values = pd.Series(np.asarray(values, float), index=np.asarray(bus, int))
        series.loc[:] = series.add(values.groupby(level=0).sum(), fill_value=0.0).reindex(self.index)

    def consume(self, bus, p) -> None:
        """Consumption p (MW); a negative one is a unit giving -p (supply = dispatch)."""
        p = np.asarray(p, float)
        self._add(self.demand, bus, np.clip(p, 0.0, None))
        self._add(self.supply, bus, np.clip(-p, 0.0, None))
        self._add(self.dispatch, bus, np.clip(-p, 0.0, None))

    def generate(self, bus, dispatch, supply) -> None:
        """Units giving ``dispatch`` (MW, negative = consuming) with room up to ``supply``."""
        dispatch = np.asarray(dispatch, float)
        self._add(self.demand, bus, np.clip(-dispatch, 0.0, None))
        self._add(self.dispatch, bus, np.clip(dispatch, 0.0, None))
        self._add(self.supply, bus, np.maximum(np.clip(supply, 0.0, None), np.clip(dispatch, 0.0, None)))


def _solved(ran) -> pd.Series:
    """Buses that ``rundcpp`` solved (an angle); the others lie in islands without a slack."""
    return ran.res_bus["va_degree"].notna() if "va_degree" in ran.res_bus else ran.res_bus["p_mw"].notna()


def _injections(net, ran, notes: list[str]) -> _Buses:
    buses = _Buses(net.bus.index)
    load = _active(net, "load")
    buses.consume(load["bus"], _scaled(load)) if len(load) else None
    storage = _active(net, "storage")
    buses.consume(storage["bus"], _scaled(storage)) if len(storage) else None
    for name in ("ward", "xward"):
        ward = _active(net, name)
        if len(ward):
            buses.consume(ward["bus"], ward["ps_mw"].to_numpy(float) + ward["pz_mw"].to_numpy(float))
    shunt = _active(net, "shunt")
    if len(shunt):
        vn_bus = net.bus["vn_kv"].reindex(shunt["bus"].astype(int)).to_numpy(float)
        vn = _column(shunt, "vn_kv")
        vn = np.where(np.isfinite(vn), vn, vn_bus)
        step = _column(shunt, "step")
        step = np.where(np.isfinite(step), step, 1.0)
        buses.consume(shunt["bus"], shunt["p_mw"].to_numpy(float) * step * (vn_bus / vn) ** 2)
        if "step_dependency_table" in shunt and shunt["step_dependency_table"].fillna(False).astype(bool).any():
            notes.append("shunts with a step characteristic table: their active power is taken as "
                         "p_mw * step, not from the table")
    consumption = float(buses.demand.sum())

    gen = _active(net, "gen")
    if len(gen):
        result = ran.res_gen["p_mw"].reindex(gen.index).to_numpy(float)
        solved = _solved(ran).reindex(gen["bus"].astype(int)).fillna(False).to_numpy(bool)
        dispatch = np.where(np.isfinite(result) & solved, result, _scaled(gen))  # unsolved: setpoint
        limit = _column(gen, "max_p_mw")
        missing = ~np.isfinite(limit)
        if missing.any():
            notes.append(f"{int(missing.sum())} gen(s) without max_p_mw: supply = their dispatch (no headroom)")
        low = np.isfinite(limit) & (limit < dispatch - 1e-9)
        if low.any():
            notes.append(f"{int(low.sum())} gen(s) dispatched above max_p_mw: supply = their dispatch")
        buses.generate(gen["bus"], dispatch, np.where(missing, dispatch, limit))
    sgen = _active(net, "sgen")
    if len(sgen):
        dispatch = _scaled(sgen)
        limit = _column(sgen, "max_p_mw")
        controllable = sgen["controllable"].fillna(False).astype(bool).to_numpy() if "controllable" in sgen \
            else np.zeros(len(sgen), bool)
        buses.generate(sgen["bus"], dispatch, np.where(controllable & np.isfinite(limit), limit, dispatch))
    grid = _active(net, "ext_grid")
    if len(grid):
        dispatch = ran.res_ext_grid["p_mw"].reindex(grid.index).to_numpy(float)
        dispatch = np.where(np.isfinite(dispatch), dispatch, 0.0)
        limit = _column(grid, "max_p_mw")
        missing = ~np.isfinite(limit)
        if missing.any():
            notes.append(f"{int(missing.sum())} ext_grid(s) without max_p_mw: supply = the layer's whole "
                         f"consumption, {consumption:,.6g} MW")
        low = np.isfinite(limit) & (limit < dispatch - 1e-9)
        if low.any():
            notes.append(f"{int(low.sum())} ext_grid(s) whose DC balance exceeds max_p_mw: supply = "
                         "their balance")
        buses.generate(grid["bus"], dispatch, np.where(missing, max(consumption, 0.0), limit))
    skipped = [name for name in UNSUPPORTED if len(_in_service(_table(net, name)))]
    if skipped:
        notes.append(f"not carried (no column for them): {', '.join(skipped)}")
    return buses


def _open_switches(net) -> tuple[dict[str, set], pd.DataFrame]:
    switches = _table(net, "switch")
    open_at = {"l": set(), "t": set()}
    if len(switches) == 0:
        return open_at, switches
    closed = switches["closed"].fillna(True).astype(bool)
    for et in ("l", "t"):
        open_at[et] = set(switches.loc[(switches["et"] == et) & ~closed, "element"].astype(int))
    return open_at, switches[(switches["et"] == "b") & closed]


def _finite_powers(net, source: str) -> None:
    """A NaN or infinite power of an in-service element is refused, as a demand in nodes.csv
    is (pandas' sums would otherwise read it as 0)."""
    for name in ("load", "sgen", "gen", "storage", "shunt", "ward", "xward", "ext_grid"):
        table = _active(net, name)
        for col in ("p_mw", "ps_mw", "pz_mw", "max_p_mw", "scaling"):
            if col not in table or not len(table):
                continue
            values = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
            bad = np.isinf(values) | (np.isnan(values) & (col in ("p_mw", "ps_mw", "pz_mw")))
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise InputError(f"{name} {table.index[k]}: {col} is {values[k]} ({int(bad.sum())} such "
                                 "element(s)); a demand or power must be a finite number", source)


def dcflow_layer(net, layer: str, prefix: str, source: str) -> ImportedLayer:
    """The ``dcflow`` layer of a pandapower network (mapping in the module docstring)."""
    from pandapower.pypower.idx_brch import BR_X, SHIFT, TAP

    notes: list[str] = []
    _finite_powers(net, source)
    ran = _run_dc(net, source)
    branch = ran._ppc["branch"]
    lookup = ran._pd2ppc_lookups["branch"]
    x_eff = branch[:, BR_X].real * np.where(branch[:, TAP].real == 0, 1.0, branch[:, TAP].real)
    shift = branch[:, SHIFT].real

    bus = net.bus
    live_bus = set(bus.index[bus["in_service"].fillna(True).astype(bool)])
    bus_id = pd.Series([f"{prefix}bus-{i}" for i in bus.index], index=bus.index)
    x, y, crs = bus_coordinates(net)
    buses = _injections(net, ran, notes)
    supply = buses.supply.to_numpy(float)
    # A NaN or infinite load is refused as in nodes.csv (negative ones became sources above).
    demand, _ = checked_demand(buses.demand.to_numpy(float), bus_id.to_numpy(), source)
    if not np.isfinite(supply).all():
        bad = int(np.flatnonzero(~np.isfinite(supply))[0])
        raise InputError(f"{bus_id.iloc[bad]}: supply is {supply[bad]}; a supply must be a finite number",
                         source)
    nodes = pd.DataFrame({
        "id": bus_id.to_numpy(), "layer": layer,
        "kind": np.where(supply > 0, "source", "bus"),
        "demand": demand, "supply": supply,
        "dispatch": np.where(supply > 0, buses.dispatch.to_numpy(float), np.nan), "x": x, "y": y,
        "element": "bus", "name": bus["name"].astype(object).where(bus["name"].notna(), "").to_numpy()
        if "name" in bus else "",
        "vn_kv": bus["vn_kv"].to_numpy(float) if "vn_kv" in bus else np.nan,
    })

    open_at, bus_bus = _open_switches(net)
    rows = []

    def names(table):
        return table["name"].astype(object).where(table["name"].notna(), "").to_numpy() \
            if "name" in table else ""

    def branches(kind, table, a, b, rows_in_ppc, capacity, length=None, ends=None):
        keep = table["in_service"].fillna(True).astype(bool).to_numpy() if "in_service" in table \
            else np.ones(len(table), bool)
        src = ends[0] if ends is not None else bus_id.reindex(table[a].astype(int)).to_numpy()
        dst = ends[1] if ends is not None else bus_id.reindex(table[b].astype(int)).to_numpy()
        for col in (a, b):
            if col is not None:
                keep &= table[col].astype(int).isin(live_bus).to_numpy()
        ids = np.array([f"{prefix}{kind}-{i}" for i in table.index], dtype=object)
        rows.append(pd.DataFrame({
            "id": ids[keep], "source": np.asarray(src, dtype=object)[keep],
            "target": np.asarray(dst, dtype=object)[keep], "directed": False, "kind": kind,
            "length": (table[length].astype(float) * 1000.0).to_numpy()[keep] if length else np.nan,
            "name": np.asarray(names(table), dtype=object)[keep] if "name" in table else "",
            "reactance": x_eff[rows_in_ppc][keep], "shift": shift[rows_in_ppc][keep] + 0.0,
            "capacity": np.asarray(capacity, float)[keep]}))

    line = _table(net, "line")
    if len(line):
        f, _ = lookup["line"]
        vn = bus["vn_kv"].reindex(line["from_bus"].astype(int)).to_numpy(float)
        capacity = (_column(line, "max_i_ka") * np.nan_to_num(_column(line, "df"), nan=1.0)
                    * np.nan_to_num(_column(line, "parallel"), nan=1.0) * vn * np.sqrt(3.0))
        missing = int(np.isnan(capacity).sum())
        if missing:
            notes.append(f"{missing} line(s) without max_i_ka: capacity left empty (unlimited)")
        rows_in_ppc = f + np.arange(len(line))
        keep = ~line.index.isin(open_at["l"])
        branches("line", line[keep], "from_bus", "to_bus", rows_in_ppc[keep], capacity[keep], "length_km")
    trafo = _table(net, "trafo")
    if len(trafo):
        f, _ = lookup["trafo"]
        capacity = (_column(trafo, "sn_mva") * np.nan_to_num(_column(trafo, "df"), nan=1.0)
                    * np.nan_to_num(_column(trafo, "parallel"), nan=1.0))
        rows_in_ppc = f + np.arange(len(trafo))
        keep = ~trafo.index.isin(open_at["t"])
        branches("trafo", trafo[keep], "hv_bus", "lv_bus", rows_in_ppc[keep], capacity[keep])
    trafo3w = _table(net, "trafo3w")
    if len(trafo3w):
        f, _ = lookup["trafo3w"]
        n = len(trafo3w)
        live = trafo3w["in_service"].fillna(True).astype(bool).to_numpy() & trafo3w[
            ["hv_bus", "mv_bus", "lv_bus"]].isin(live_bus).all(axis=1).to_numpy()
        star = np.array([f"{prefix}trafo3w-{i}-star" for i in trafo3w.index], dtype=object)
        hv = trafo3w["hv_bus"].astype(int).to_numpy()
        pos = nodes.set_index("id")[["x", "y"]].reindex(bus_id.reindex(hv).to_numpy()).to_numpy(float)
        nodes = pd.concat([nodes, pd.DataFrame({
            "id": star[live], "layer": layer, "kind": "star", "demand": 0.0, "supply": 0.0,
            "dispatch": np.nan, "x": pos[live, 0], "y": pos[live, 1], "element": "trafo3w",
            "name": np.asarray(names(trafo3w), dtype=object)[live] if "name" in trafo3w else "",
            "vn_kv": np.nan})], ignore_index=True)
        for k, side in enumerate(("hv", "mv", "lv")):
            part = trafo3w[live].copy()
            part.index = [f"{i}-{side}" for i in trafo3w.index[live]]
            side_bus = bus_id.reindex(trafo3w[f"{side}_bus"].astype(int)).to_numpy()[live]
            ends = (side_bus, star[live]) if side == "hv" else (star[live], side_bus)
            branches("trafo3w", part, None, None, (f + k * n + np.arange(n))[live],
                     _column(part, f"sn_{side}_mva"), ends=ends)
        notes.append(f"{int(live.sum())} three-winding transformer(s): three branches each (hv-star, "
                     "star-mv, star-lv) through a star node '<prefix>trafo3w-<index>-star'")
    impedance = _table(net, "impedance")
    if len(impedance):
        f, _ = lookup["impedance"]
        branches("impedance", impedance, "from_bus", "to_bus", f + np.arange(len(impedance)),
                 np.full(len(impedance), np.nan))
    if len(bus_bus):
        with_z = np.asarray(getattr(ran, "_impedance_bb_switches", np.zeros(0)), bool)
        all_switches = _table(net, "switch")
        if with_z.size != len(all_switches):
            with_z = np.zeros(len(all_switches), bool)
        row_of = np.full(len(all_switches), -1)
        if with_z.any():
            f, _ = lookup["switch"]
            row_of[with_z] = f + np.arange(int(with_z.sum()))
        where = all_switches.index.get_indexer(bus_bus.index)
        ppc_rows = row_of[where]
        ideal = ppc_rows < 0
        vn = bus["vn_kv"].reindex(bus_bus["bus"].astype(int)).to_numpy(float)
        capacity = _column(bus_bus, "in_ka") * vn * np.sqrt(3.0)
        finite = np.abs(x_eff[(x_eff != 0) & np.isfinite(x_eff)])
        x_switch = SWITCH_REACTANCE * (finite.min() if finite.size else 1.0)
        react = np.where(ideal, x_switch, x_eff[np.where(ideal, 0, ppc_rows)] if len(x_eff) else 0.0)
        live = bus_bus[["bus", "element"]].astype(int).isin(live_bus).all(axis=1).to_numpy()
        rows.append(pd.DataFrame({
            "id": [f"{prefix}switch-{i}" for i in bus_bus.index[live]],
            "source": bus_id.reindex(bus_bus["bus"].astype(int)).to_numpy()[live],
            "target": bus_id.reindex(bus_bus["element"].astype(int)).to_numpy()[live],
            "directed": False, "kind": "switch", "length": 0.0,
            "name": np.asarray(names(bus_bus), dtype=object)[live] if "name" in bus_bus else "",
            "reactance": react[live], "shift": 0.0, "capacity": capacity[live]}))
        if (ideal & live).any():
            notes.append(f"{int((ideal & live).sum())} closed bus-bus switch(es) without impedance: "
                         f"reactance {x_switch:.3g} p.u., 1e-6 times the smallest branch reactance "
                         "(pandapower fuses their buses)")
    edges = edge_table(rows, "bus", source)
    negative = int((edges["reactance"] <= 0).sum()) if len(edges) else 0
    if negative:
        notes.append(f"{negative} branch(es) with negative reactance (series capacitors) kept as they are")
    _check_injections(ran, nodes, bus_id, notes)
    return ImportedLayer(nodes, edges, crs, source, rule="dcflow", unit="MW", base=float(net.sn_mva),
                         notes=notes)


def _check_injections(ran, nodes: pd.DataFrame, bus_id: pd.Series, notes: list[str]) -> None:
    """Compare each bus's injection (dispatch - demand) with ``rundcpp``'s (``-res_bus.p_mw``)."""
    res = ran.res_bus["p_mw"].reindex(bus_id.index).to_numpy(float)
    table = nodes.set_index("id").reindex(bus_id.to_numpy())
    mine = np.nan_to_num(table["dispatch"].to_numpy(float)) - table["demand"].to_numpy(float)
    solved = _solved(ran).reindex(bus_id.index).fillna(False).to_numpy(bool) & np.isfinite(res)
    if (~solved).any():
        stranded = ~solved & (table["supply"].to_numpy(float) > 0)
        if stranded.any():
            notes.append(f"{int(stranded.sum())} bus(es) with generation lie in islands without an "
                         "ext_grid or slack gen: rundcpp leaves them unsupplied, the dcflow rule "
                         "serves them from their own generators")
    if solved.any():
        gap = np.abs(mine[solved] + res[solved])
        scale = max(float(np.abs(res[solved]).max()), 1.0)
        if gap.max() > 1e-6 * scale:
            notes.append(f"bus injections differ from rundcpp's at {int((gap > 1e-6 * scale).sum())} "
                         f"bus(es), by up to {gap.max():.6g} MW (elements not carried)")
