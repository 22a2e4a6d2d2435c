"""Redundancy investments: which backup, feed, link, hardening (or, on flow layers, capacity,
supply or new line) buys the most resilience.

A planner lists candidate measures in a CSV file (see :func:`read_candidates` for the exact
columns).  Each measure changes the system (:func:`apply_measures` returns a new
:class:`InfrastructureSystem`; the input is never changed) or how the hazard acts on it
(``harden``).  Every candidate, and every combination the planner looks at, is evaluated on the
*same* hazard samples (common random numbers), so that a measure's benefit is a paired
difference per sample and a measure that changes nothing has a benefit of exactly zero.

Metrics
-------
``served``
    Expected service loss of the static cascade (docs/format.md): ``1 - service`` of each layer
    (served fraction of its demand, of its nodes without demand), averaged over the layers
    with their weights (``system.toml``, default 1); demands of different layers are never
    added.  Backups (dependency delays) do not act here: the static cascade treats
    delays as exhausted, so a backup has zero static benefit by definition.  On a system
    with flow layers the cascade is the v2 one (:mod:`cascade.flowcore`) and a node counts
    demand x its served fraction, so partial service and overload trips count; the measures
    ``capacity``, ``supply`` and ``line`` act on the flows.
``resilience``
    Expected resilience loss R = ∫ (1 − Q(t)) dt (Bruneau et al., Earthquake Spectra 19,
    733, 2003) of the restoration computed by :func:`cascade.recovery.recover` with a
    chosen strategy and crews.  In the time model a group with a delay keeps its dependent
    running for that many hours after its last supplier failed, so a backup that outlasts
    the repair of its supplier removes that node's outage (and everything downstream of it).

Benefit is the mean of the paired differences ``loss(base) - loss(with measure)`` over the
samples, with a Student t 95 % interval ``mean ± t(0.975, n-1) · sd / √n`` (sd with ddof = 1;
the t quantile, not the normal 1.96, so that small samples get honest widths; with common
random numbers the paired sd is small, see Glasserman, *Monte Carlo Methods in Financial
Engineering*, 2003, §4.2 on common random numbers).

The budgeted plan is greedy by benefit per cost with re-evaluation after each pick on the
system that already holds the picked measures (measures interact: two backups on the same
feeder are not worth twice one), as in the greedy heuristics for budgeted submodular coverage
(Khuller, Moss, Naor, Inf. Process. Lett. 70, 39, 1999); when the candidate list is small the
plan is compared with the best plan of an exhaustive search.
"""
from __future__ import annotations

import csv
import itertools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Protocol, Sequence

import numpy as np
import pandas as pd

from .compiled import CompiledSystem, Workspace, compile_system
from .errors import InputError, did_you_mean, reading
from .io.csv_dir import check_header
from .light import t95
from .progress import ProgressArg, tracker
from .resources import require_memory
from .system import FALSE, TRUE, InfrastructureSystem
from .units import layer_weights

TYPES = ("backup", "feed", "link", "harden", "capacity", "supply", "line")
# Measures that only make sense on flow layers (docs/format.md (v2)).
FLOW_TYPES = ("capacity", "supply", "line")
METRICS = ("served", "resilience")
# Columns a candidates CSV may fill, per type; `id`, `type`, `cost` are always required and
# `description` is free text.  Any other column is kept out of the way (ignored).
COLUMNS = {
    "backup": {"node": True, "group": False, "hours": True},
    "feed": {"node": True, "supplier": True, "group": False},
    "link": {"source": True, "target": True, "directed": False},
    "harden": {"element": True, "factor": False},
    "capacity": {"element": True, "capacity": True},
    "supply": {"node": True, "supply": True},
    "line": {"source": True, "target": True, "capacity": False, "reactance": False, "directed": False},
}
PARAMETER_COLUMNS = ("node", "group", "hours", "supplier", "source", "target", "directed",
                     "element", "factor", "capacity", "supply", "reactance")
RANKING_COLUMNS = ["rank", "id", "type", "cost", "benefit", "benefit_low", "benefit_high",
                   "benefit_per_cost"]
# Exhaustive search over every affordable subset is offered up to this many candidates
# (2**10 = 1024 subsets, each evaluated on every sample; a resilience evaluation runs a
# repair schedule per distinct failed set, so its limit is lower).
EXHAUSTIVE_LIMIT = {"served": 10, "resilience": 5}


# Modified systems (with their compiled arrays) kept for reuse during one analysis.
SYSTEM_CACHE = 64

# Default cost model of --suggest (cost units; replace with real prices).
SUGGEST_HOURS = 24.0
BACKUP_COST_FIXED = 50.0      # a generator / battery / tank set
BACKUP_COST_PER_HOUR = 2.0    # fuel or storage per hour of autonomy
FEED_COST_FIXED = 100.0       # switchgear, valve or port at both ends
FEED_COST_PER_M = 0.2         # per metre of straight-line distance between the two nodes
FEED_COST_NO_COORDS = 300.0   # when the system has no x, y


# ---------------------------------------------------------------------------------- measures
@dataclass(frozen=True)
class Measure:
    """One candidate measure (a row of the candidates CSV).

    Attributes
    ----------
    id : str
        Unique name of the measure; for a ``link`` it is also the new edge's id.
    type : {"backup", "feed", "link", "harden"}
    cost : float
        Non-negative, in the planner's cost unit.
    node, group, hours
        ``backup``: give the dependency groups of ``node`` selected by ``group`` (a group
        label of its dependency rows, or a supplier layer name; empty: every group) a delay
        of at least ``hours``.  ``feed``: the node that gets a second supplier.
    supplier : str
        ``feed``: the new supplier, added as an alternative to the group of ``node`` selected
        by ``group`` (empty: the one group of ``node`` whose suppliers lie in the supplier's
        layer).
    source, target, directed
        ``link``: a new edge inside one layer.
    element, factor
        ``harden``: a node or edge that survives the hazard (``factor`` empty), or whose
        fragility median is multiplied by ``factor`` (>= 1).  ``capacity``: the edge whose
        capacity is raised.
    capacity : float or None
        ``capacity``: the edge's new capacity (above its current one), in its layer's unit.
        ``line``: the new edge's capacity (None: unlimited).
    supply : float or None
        ``supply``: the node's new supply (above its current one), in its layer's unit.
    reactance : float or None
        ``line`` in a ``dcflow`` layer: the new branch's reactance (per unit, not 0).
    description : str
        Free text shown in the table.
    line : int or None
        Line in the candidates file, for messages.
    """

    id: str
    type: str
    cost: float
    node: str | None = None
    group: str | None = None
    hours: float | None = None
    supplier: str | None = None
    source: str | None = None
    target: str | None = None
    directed: bool = False
    element: str | None = None
    factor: float | None = None
    capacity: float | None = None
    supply: float | None = None
    reactance: float | None = None
    description: str = ""
    line: int | None = None

    def summary(self) -> str:
        """What the measure does, in a few words."""
        if self.type == "backup":
            which = f" ({self.group})" if self.group else ""
            return f"{self.hours:g} h backup at {self.node}{which}"
        if self.type == "feed":
            return f"second feed {self.supplier} -> {self.node}"
        if self.type == "link":
            arrow = "->" if self.directed else "--"
            return f"new link {self.source} {arrow} {self.target}"
        if self.type == "capacity":
            return f"capacity of {self.element} to {self.capacity:g}"
        if self.type == "supply":
            return f"supply of {self.node} to {self.supply:g}"
        if self.type == "line":
            arrow = "->" if self.directed else "--"
            rating = "unlimited" if self.capacity is None else f"capacity {self.capacity:g}"
            return f"new line {self.source} {arrow} {self.target} ({rating})"
        if self.factor is None:
            return f"harden {self.element} (survives the hazard)"
        return f"harden {self.element} (fragility median x{self.factor:g})"

    def to_dict(self) -> dict:
        out = {"id": self.id, "type": self.type, "cost": self.cost}
        for col in COLUMNS[self.type]:
            value = getattr(self, col)
            if value is not None and value != "":
                out[col] = value
        if self.description:
            out["description"] = self.description
        return out


def _number(raw: str, col: str, file: str, line: int, *, positive: bool = False) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"'{col}' is not a number: '{raw}'", file, line) from None
    if not math.isfinite(value):
        raise InputError(f"'{col}' is not a finite number: '{raw}'", file, line)
    if value < 0:
        raise InputError(f"'{col}' is negative: '{raw}'", file, line)
    if positive and value == 0:
        raise InputError(f"'{col}' must be greater than 0", file, line)
    return value


def _reactance(raw: str, file: str, line: int) -> float:
    """A line's reactance: a finite number, not 0 (negative: a series capacitor, as in edges.csv)."""
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"'reactance' is not a number: '{raw}'", file, line) from None
    if not math.isfinite(value):
        raise InputError(f"'reactance' is not a finite number: '{raw}'", file, line)
    if value == 0:
        raise InputError("'reactance' must not be 0 (negative is a series capacitor)", file, line)
    return value


class _Lookup:
    """Ids, layers and dependency groups of a system, for validating candidates."""

    def __init__(self, system: InfrastructureSystem):
        self.layer_of = dict(zip(system.nodes["id"], system.nodes["layer"]))
        self.edge_layer = dict(zip(system.edges["id"], system.edges["source"].map(self.layer_of)))
        self.deps = system.dependencies
        self.rules = system.layer_rules()
        self.system = system

    def flow_rule(self, layer: str) -> str | None:
        """``"flow"`` or ``"dcflow"`` for a flow layer, else None."""
        rule = self.rules.get(layer)
        return rule if rule in ("flow", "dcflow") else None

    def edge_capacity(self, edge: str) -> float:
        """The edge's capacity (inf: unlimited)."""
        edges = self.system.edges
        if "capacity" not in edges.columns:
            return math.inf
        value = float(edges.loc[edges["id"] == edge, "capacity"].iloc[0])
        return math.inf if math.isnan(value) else value

    def node_supply(self, node: str) -> float:
        nodes = self.system.nodes
        if "supply" not in nodes.columns:
            return 0.0
        value = float(nodes.loc[nodes["id"] == node, "supply"].iloc[0])
        return 0.0 if math.isnan(value) else value

    def node(self, name: str, col: str, file: str, line: int) -> str:
        if name not in self.layer_of:
            raise InputError(f"{col} '{name}' is not a node of the system"
                             + did_you_mean(name, self.layer_of), file, line)
        return name

    def group_rows(self, node: str, group: str | None) -> np.ndarray:
        """Positions of the dependency rows of ``node`` in the groups that ``group`` selects."""
        d = self.deps
        mine = (d["dependent"] == node).to_numpy()
        if not group:
            return np.flatnonzero(mine)
        by_label = mine & (d["group"] == group).to_numpy()
        if by_label.any():
            return np.flatnonzero(by_label)
        by_layer = mine & (d["supplier"].map(self.layer_of) == group).to_numpy()
        return np.flatnonzero(by_layer)


def parse_candidates(table: pd.DataFrame, system: InfrastructureSystem, *,
                     file: str = "candidates", lines: Sequence[int] | None = None) -> list[Measure]:
    """Validate a table of candidate measures against a system.

    Parameters
    ----------
    table : pandas.DataFrame
        String cells (missing cells ``''``), columns as in :func:`read_candidates`.
    system : InfrastructureSystem
    file : str
        Name used in error messages.
    lines : sequence of int, optional
        File line of each row (default: row + 2, the header being line 1).

    Returns
    -------
    list of Measure, in table order

    Raises
    ------
    InputError
        Naming the file and line: a missing column, an empty or duplicate id, an unknown type,
        a bad or negative number, an unknown node, edge or group, a link across layers, a
        feed that already exists, a column that does not apply to the row's type.
    """
    table = table.fillna("").astype(str)
    table.columns = [str(c).strip() for c in table.columns]
    for col in ("id", "type", "cost"):
        if col not in table.columns:
            raise InputError(f"missing required column '{col}'", file)
    lines = list(lines) if lines is not None else [r + 2 for r in range(len(table))]
    look = _Lookup(system)
    seen: dict[str, int] = {}
    out = []
    for k, row in enumerate(table.to_dict("records")):
        line = lines[k]
        row = {c: str(v).strip() for c, v in row.items()}
        mid, mtype = row["id"], row["type"].lower()
        if not mid:
            raise InputError("empty 'id'", file, line)
        if mid in seen:
            raise InputError(f"duplicate measure id '{mid}' (also on line {seen[mid]})", file, line)
        seen[mid] = line
        if mtype not in TYPES:
            raise InputError(f"measure '{mid}': unknown type '{row['type']}' (use backup, feed, link, "
                             f"harden, capacity, supply or line)", file, line)
        if row["cost"] == "":
            raise InputError(f"measure '{mid}': empty 'cost'", file, line)
        cost = _number(row["cost"], "cost", file, line)
        spec = COLUMNS[mtype]
        for col in PARAMETER_COLUMNS:
            value = row.get(col, "")
            if col not in spec and value != "":
                raise InputError(f"measure '{mid}': column '{col}' does not apply to a {mtype} "
                                 f"(it takes {', '.join(spec)})", file, line)
            if spec.get(col) and value == "":
                raise InputError(f"measure '{mid}': a {mtype} needs '{col}'", file, line)
        kw = dict(id=mid, type=mtype, cost=cost, description=row.get("description", ""), line=line)
        if mtype == "backup":
            node = look.node(row["node"], "node", file, line)
            hours = _number(row["hours"], "hours", file, line, positive=True)
            group = row.get("group", "") or None
            if not len(look.group_rows(node, group)):
                what = f"no dependency group or supplier layer '{group}'" if group else "no dependencies"
                raise InputError(f"measure '{mid}': node '{node}' has {what} to back up", file, line)
            out.append(Measure(node=node, group=group, hours=hours, **kw))
        elif mtype == "feed":
            node = look.node(row["node"], "node", file, line)
            supplier = look.node(row["supplier"], "supplier", file, line)
            if supplier == node:
                raise InputError(f"measure '{mid}': node '{node}' cannot supply itself", file, line)
            group = row.get("group", "") or None
            rows = look.group_rows(node, group or look.layer_of[supplier])
            if not len(rows):
                target = f"group or supplier layer '{group}'" if group else \
                    f"dependency on layer '{look.layer_of[supplier]}'"
                raise InputError(f"measure '{mid}': node '{node}' has no {target}; a feed adds an "
                                 f"alternative supplier to an existing group", file, line)
            d = look.deps.iloc[rows]
            keys = set(d["group"].where(d["group"] != "", pd.Series(rows, index=d.index).astype(str)))
            if len(keys) > 1:
                raise InputError(f"measure '{mid}': node '{node}' has {len(keys)} groups on "
                                 f"'{group or look.layer_of[supplier]}'; name one in 'group'", file, line)
            if supplier in set(d["supplier"]):
                raise InputError(f"measure '{mid}': '{supplier}' already supplies that group of "
                                 f"'{node}'", file, line)
            out.append(Measure(node=node, supplier=supplier, group=group, **kw))
        elif mtype in ("link", "line"):
            source = look.node(row["source"], "source", file, line)
            target = look.node(row["target"], "target", file, line)
            if source == target:
                raise InputError(f"measure '{mid}': a {mtype} needs two different nodes", file, line)
            if look.layer_of[source] != look.layer_of[target]:
                raise InputError(f"measure '{mid}': {mtype} joins layer '{look.layer_of[source]}' to layer "
                                 f"'{look.layer_of[target]}'; edges stay inside one layer", file, line)
            if mid in look.edge_layer or mid in look.layer_of:
                raise InputError(f"measure '{mid}': the new edge would take the id '{mid}', which the "
                                 f"system already uses", file, line)
            flag = row.get("directed", "").lower()
            if flag not in TRUE | FALSE:
                raise InputError(f"measure '{mid}': 'directed' must be true or false, not "
                                 f"'{row['directed']}'", file, line)
            layer = look.layer_of[source]
            if mtype == "link" and look.flow_rule(layer):
                raise InputError(f"measure '{mid}': layer '{layer}' uses the {look.flow_rule(layer)} rule; "
                                 f"add the edge as a 'line' with its capacity"
                                 + (" and reactance" if look.flow_rule(layer) == "dcflow" else ""), file, line)
            if mtype == "link":
                out.append(Measure(source=source, target=target, directed=flag in TRUE, **kw))
                continue
            rule = look.flow_rule(layer)
            if rule is None:
                raise InputError(f"measure '{mid}': a line needs a flow or dcflow layer, and layer "
                                 f"'{layer}' uses the {look.rules[layer]} rule (use a 'link')", file, line)
            capacity = _number(row["capacity"], "capacity", file, line) if row.get("capacity", "") else None
            reactance = None
            if rule == "dcflow":
                if not row.get("reactance", ""):
                    raise InputError(f"measure '{mid}': a line in dcflow layer '{layer}' needs 'reactance'",
                                     file, line)
                reactance = _reactance(row["reactance"], file, line)
            elif row.get("reactance", ""):
                raise InputError(f"measure '{mid}': 'reactance' applies to dcflow layers only, and layer "
                                 f"'{layer}' uses the flow rule", file, line)
            out.append(Measure(source=source, target=target, directed=flag in TRUE, capacity=capacity,
                               reactance=reactance, **kw))
        elif mtype == "capacity":
            edge = row["element"]
            if edge not in look.edge_layer:
                raise InputError(f"measure '{mid}': element '{edge}' is not an edge of the system"
                                 + did_you_mean(edge, look.edge_layer), file, line)
            layer = look.edge_layer[edge]
            if not look.flow_rule(layer):
                raise InputError(f"measure '{mid}': edge '{edge}' is in layer '{layer}', which uses the "
                                 f"{look.rules[layer]} rule; capacities act in flow and dcflow layers only",
                                 file, line)
            capacity = _number(row["capacity"], "capacity", file, line)
            now = look.edge_capacity(edge)
            if not capacity > now:
                raise InputError(f"measure '{mid}': the new capacity {capacity:g} of '{edge}' is not above "
                                 f"its capacity {now:g}" if math.isfinite(now) else
                                 f"measure '{mid}': edge '{edge}' has no capacity limit to raise", file, line)
            out.append(Measure(element=edge, capacity=capacity, **kw))
        elif mtype == "supply":
            node = look.node(row["node"], "node", file, line)
            layer = look.layer_of[node]
            if not look.flow_rule(layer):
                raise InputError(f"measure '{mid}': node '{node}' is in layer '{layer}', which uses the "
                                 f"{look.rules[layer]} rule; supplies act in flow and dcflow layers only",
                                 file, line)
            supply = _number(row["supply"], "supply", file, line)
            now = look.node_supply(node)
            if not supply > now:
                raise InputError(f"measure '{mid}': the new supply {supply:g} of '{node}' is not above its "
                                 f"supply {now:g}", file, line)
            out.append(Measure(node=node, supply=supply, **kw))
        else:
            element = row["element"]
            if element not in look.layer_of and element not in look.edge_layer:
                raise InputError(f"measure '{mid}': element '{element}' is not a node or edge of the "
                                 f"system" + did_you_mean(element, [*look.layer_of, *look.edge_layer]),
                                 file, line)
            factor = None
            if row.get("factor", ""):
                factor = _number(row["factor"], "factor", file, line, positive=True)
                if factor < 1:
                    raise InputError(f"measure '{mid}': 'factor' {factor:g} < 1 would weaken "
                                     f"'{element}'", file, line)
            out.append(Measure(element=element, factor=factor, **kw))
    return out


def read_candidates(path: str | os.PathLike, system: InfrastructureSystem) -> list[Measure]:
    """Read and validate a candidates CSV file.

    Columns (header on line 1; blank lines and lines starting with ``#`` are skipped):

    ==============  =========================================================================
    ``id``          unique measure id (required)
    ``type``        ``backup``, ``feed``, ``link`` or ``harden`` (required)
    ``cost``        number >= 0 (required)
    ``node``        backup, feed: the protected node
    ``group``       backup, feed (optional): a group label of the node's dependency rows,
                    or a supplier layer name; backup default every group, feed default the
                    one group on the supplier's layer
    ``hours``       backup: delay in hours (> 0)
    ``supplier``    feed: the new supplier node
    ``source``,     link, line: the new edge's ends (same layer); its id is the measure id
    ``target``      (a link in a v1 layer, a line in a flow or dcflow layer)
    ``directed``    link, line (optional): true/false, default false
    ``element``     harden: node or edge id; capacity: an edge of a flow or dcflow layer
    ``factor``      harden (optional): fragility median multiplied by this (>= 1); empty:
                    the element survives the hazard
    ``capacity``    capacity: the new capacity of the edge ``element`` (above its current
                    one); line (optional): the new edge's capacity, empty = unlimited
    ``supply``      supply: the new supply of ``node`` (above its current one)
    ``reactance``   line in a ``dcflow`` layer: the new branch's reactance (not 0)
    ``description`` free text (optional)
    ==============  =========================================================================

    A column that does not apply to a row's type must be empty in that row.

    Raises
    ------
    InputError
        Naming the file and line (see :func:`parse_candidates`).
    """
    file = str(path)
    try:
        with reading(path), open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, skipinitialspace=True)
            header, rows, lines = None, [], []
            end = 0
            for record in reader:
                start, end = end + 1, reader.line_num  # a quoted field may span lines
                if not record or all(not c.strip() for c in record) or record[0].lstrip().startswith("#"):
                    continue
                if header is None:
                    header = [c.strip() for c in record]
                    width = len(header)
                    header_line = start
                    continue
                if len(record) > width:
                    raise InputError(f"{len(record)} fields, the header has {width}", file, start)
                rows.append(record + [""] * (width - len(record)))
                lines.append(start)
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", file) from None
    if header is None:
        raise InputError("empty file (it needs a header line)", file)
    check_header(header, header_line, file)
    return parse_candidates(pd.DataFrame(rows, columns=header, dtype=object), system,
                            file=file, lines=lines)


def write_candidates(measures: Iterable[Measure]) -> str:
    """Measures as candidates CSV text (the columns of :func:`read_candidates`)."""
    measures = list(measures)
    params = [c for c in PARAMETER_COLUMNS if c not in ("capacity", "supply", "reactance")
              or any(m.type in FLOW_TYPES for m in measures)]
    cols = ["id", "type", "cost", *params, "description"]
    rows = []
    for m in measures:
        d = m.to_dict()
        if m.type in ("link", "line"):
            d["directed"] = "true" if m.directed else "false"
        rows.append({c: d.get(c, "") for c in cols})
    frame = pd.DataFrame(rows, columns=cols)
    return frame.to_csv(index=False, lineterminator="\n")


def apply_measures(system: InfrastructureSystem, measures: Iterable[Measure]) -> InfrastructureSystem:
    """A new system with the structural measures applied (the input is not changed).

    ``backup`` raises the ``delay`` of the selected dependency rows to at least ``hours``;
    ``feed`` adds a dependency row to the selected group (a group that was a row of its own
    gets the label ``feed:<measure id>`` so that both rows form one group; the row takes the
    group's largest delay and, where the system has thresholds, its smallest threshold);
    ``link`` appends an edge whose id is the measure id.  ``harden`` leaves the system alone:
    it acts through the hazard (:func:`hazard_options`).

    Flow layers: ``capacity`` sets the edge's ``capacity``, ``supply`` the node's ``supply``
    (a node of a ``dcflow`` layer whose sources have a ``dispatch`` and that had no supply
    becomes a source dispatched at 0: it takes a share of the load above the setpoints in
    proportion to its headroom, like the other sources, docs/format.md), and ``line``
    appends an edge with its ``capacity`` (NaN: unlimited), ``reactance`` (dcflow) and
    ``shift`` 0.  Two measures on the same edge or node keep the larger value.

    Node order, and the order of the existing edges, never change, so node and edge indices
    of the base system's compiled form stay valid in the new one (new edges come last).
    """
    measures = list(measures)
    structural = [m for m in measures if m.type != "harden"]
    if not structural:
        return system.copy()
    look = _Lookup(system)
    deps = system.dependencies.copy()
    edges = system.edges
    nodes = system.nodes
    new_edges, new_deps = [], []
    if any(m.type in FLOW_TYPES for m in structural):
        edges, nodes = _apply_flow(system, structural)
    for m in structural:
        look.deps = deps  # rows added or relabelled by earlier measures count
        if m.type == "backup":
            rows = look.group_rows(m.node, m.group)
            col = deps.columns.get_loc("delay")
            deps.iloc[rows, col] = np.maximum(deps.iloc[rows, col].to_numpy(float), float(m.hours))
        elif m.type == "feed":
            rows = look.group_rows(m.node, m.group or look.layer_of[m.supplier])
            label = deps["group"].iloc[rows[0]]
            if label == "":
                label = f"feed:{m.id}"
                deps.iloc[rows[:1], deps.columns.get_loc("group")] = label
            delay = float(deps["delay"].iloc[rows].max())
            new_deps.append({"dependent": m.node, "supplier": m.supplier, "group": label,
                             "delay": delay})
            if "threshold" in deps.columns:
                new_deps[-1]["threshold"] = float(np.nanmin(deps["threshold"].iloc[rows].to_numpy(float)))
            deps = pd.concat([deps, _rows_like(deps, new_deps[-1:])], ignore_index=True)
            new_deps.clear()
        elif m.type == "link":
            new_edges.append({"id": m.id, "source": m.source, "target": m.target,
                              "directed": bool(m.directed)})
    if new_edges:
        edges = pd.concat([edges, _rows_like(edges, new_edges)], ignore_index=True)
    else:
        edges = edges.copy()
    return InfrastructureSystem(nodes.copy(), edges, deps, system.name, system.crs,
                                dict(system.rules), dict(system.units), dict(system.weights),
                                dict(system.bases), system.currency)


def _apply_flow(system: InfrastructureSystem, measures: Sequence[Measure]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Edges and nodes with the ``capacity``, ``supply`` and ``line`` measures applied (new
    lines appended after the existing edges, in measure order)."""
    edges, nodes = system.edges.copy(), system.nodes.copy()
    lines = [m for m in measures if m.type == "line"]
    if "capacity" not in edges.columns and (lines or any(m.type == "capacity" for m in measures)):
        edges["capacity"] = np.nan
    if lines and "reactance" not in edges.columns:
        edges["reactance"] = np.nan
    if lines and "shift" not in edges.columns:
        edges["shift"] = 0.0
    rules = system.layer_rules()
    layer_of = dict(zip(nodes["id"], nodes["layer"]))
    for m in measures:
        if m.type == "capacity":
            at = np.flatnonzero((edges["id"] == m.element).to_numpy())
            col = edges.columns.get_loc("capacity")
            now = edges.iloc[at, col].to_numpy(float)
            edges.iloc[at, col] = np.fmax(now, float(m.capacity))
        elif m.type == "supply":
            at = np.flatnonzero((nodes["id"] == m.node).to_numpy())
            col = nodes.columns.get_loc("supply")
            before = np.nan_to_num(nodes.iloc[at, col].to_numpy(float))
            nodes.iloc[at, col] = np.fmax(before, float(m.supply))
            layer = layer_of[m.node]
            if rules.get(layer) == "dcflow" and "dispatch" in nodes.columns and not (before > 0).any():
                here = (nodes["layer"] == layer).to_numpy()
                sources = here & (nodes["supply"].to_numpy(float) > 0)
                if (~np.isnan(nodes["dispatch"].to_numpy(float)[sources & ~np.isin(np.arange(len(nodes)), at)])).any():
                    nodes.iloc[at, nodes.columns.get_loc("dispatch")] = 0.0
    if lines:
        rows = [{"id": m.id, "source": m.source, "target": m.target, "directed": bool(m.directed),
                 "capacity": np.nan if m.capacity is None else float(m.capacity),
                 "reactance": np.nan if m.reactance is None else float(m.reactance), "shift": 0.0}
                for m in lines]
        edges = pd.concat([edges, _rows_like(edges, rows)], ignore_index=True)
    return edges, nodes


def _rows_like(table: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    """New rows with the columns and dtypes of ``table`` (missing strings '', numbers NaN)."""
    out = {}
    for col in table.columns:
        dtype = table[col].dtype
        if dtype == object:
            out[col] = pd.Series([r.get(col, "") for r in rows], dtype=object)
        elif dtype == bool:
            out[col] = pd.Series([bool(r.get(col, False)) for r in rows], dtype=bool)
        else:
            out[col] = pd.Series([r.get(col, np.nan) for r in rows], dtype=dtype)
    return pd.DataFrame(out, columns=table.columns)


def hazard_options(measures: Iterable[Measure]) -> tuple[tuple[str, ...], dict[str, float] | None]:
    """``(immune, fragility_scale)`` for :meth:`cascade.hazards.Scenario.sample` from the
    ``harden`` measures (element ids; factors of one element multiply)."""
    immune, scale = set(), {}
    for m in measures:
        if m.type != "harden":
            continue
        if m.factor is None:
            immune.add(m.element)
        else:
            scale[m.element] = scale.get(m.element, 1.0) * m.factor
    return tuple(sorted(immune)), (dict(sorted(scale.items())) or None)


# ---------------------------------------------------------------------------------- samplers
class FailureSampler(Protocol):
    """What the evaluation needs from a hazard: sample ``i`` of a system, as initial failures.

    Implementations must use common random numbers: sample ``i`` depends only on ``i`` and on
    element ids, so that ``immune`` and ``fragility_scale`` change it only where they act.
    """

    def sample(self, compiled: CompiledSystem, sample_index: int, *, immune=(),
               fragility_scale=None) -> tuple[np.ndarray, np.ndarray]:
        ...


class FixedSampler:
    """A stand-in hazard: sample ``i`` fails the ids of ``failure_sets[i % len]``.

    ``immune`` elements are removed from the set; a fragility factor cannot be expressed on
    fixed sets and is refused.

    Parameters
    ----------
    failure_sets : sequence of iterables of str
        Node and edge ids per sample.
    """

    def __init__(self, failure_sets: Sequence[Iterable[str]]):
        self.failure_sets = [tuple(s) for s in failure_sets]
        if not self.failure_sets:
            raise ValueError("FixedSampler needs at least one failure set")

    def sample(self, compiled: CompiledSystem, sample_index: int, *, immune=(),
               fragility_scale=None) -> tuple[np.ndarray, np.ndarray]:
        if fragility_scale:
            raise InputError("a fixed list of failure sets has no fragility to scale; "
                             "use a hazard scenario for 'harden' with a factor")
        ids = [x for x in self.failure_sets[sample_index % len(self.failure_sets)] if x not in set(immune)]
        return compiled.split_ids(ids)


class ScenarioSampler:
    """The :class:`cascade.hazards.Scenario` as a :class:`FailureSampler` for one base system.

    Prepares the scenario for the base system once and always samples on the base system's
    compiled form: structural measures only append edges and dependency rows, so base
    indices stay valid in every modified system, and new links and feeds are taken to
    survive the hazard (they are not sampled).  ``harden`` measures reach the hazard as
    ``immune`` and ``fragility_scale``.

    Parameters
    ----------
    scenario : cascade.hazards.Scenario
    system : InfrastructureSystem
        The base system.
    compiled : CompiledSystem, optional
    seed : int, optional
        Overrides the scenario's seed.
    """

    def __init__(self, scenario, system: InfrastructureSystem,
                 compiled: CompiledSystem | None = None, seed: int | None = None):
        self.scenario = scenario
        self.seed = seed
        self.compiled = compiled if compiled is not None else compile_system(system)
        scenario.prepare(system, self.compiled)

    def sample(self, compiled: CompiledSystem, sample_index: int, *, immune=(),
               fragility_scale=None) -> tuple[np.ndarray, np.ndarray]:
        return self.scenario.sample(self.compiled, sample_index, immune=immune,
                                    fragility_scale=fragility_scale, seed=self.seed)

    @property
    def feedback(self) -> bool:
        """True when the hazard's direct failures depend on the cascade (rainfall)."""
        return bool(getattr(self.scenario.hazard, "feedback", False))

    def settle(self, ws: Workspace, sample_index: int, *, immune=(),
               fragility_scale=None) -> tuple[np.ndarray, np.ndarray]:
        """Direct failures of sample ``i`` at the hazard-cascade fixpoint on ``ws``'s system
        (:meth:`cascade.hazards.Scenario.run`)."""
        return self.scenario.run(self.compiled, ws, sample_index, immune=immune,
                                 fragility_scale=fragility_scale, seed=self.seed)


# ---------------------------------------------------------------------------------- evaluation
@dataclass
class Benefit:
    """A paired benefit: ``diff[i] = loss_before[i] - loss_after[i]`` over the samples."""

    mean: float
    low: float
    high: float
    changed: int          # samples where the measure changed the loss
    samples: int
    layers: dict | None = None   # mean static benefit per layer (served metric only)

    @classmethod
    def paired(cls, before: np.ndarray, after: np.ndarray, layers_before=None, layers_after=None,
               layer_names=None) -> "Benefit":
        diff = np.asarray(before, float) - np.asarray(after, float)
        n = len(diff)
        mean = float(diff.mean()) if n else 0.0
        half = t95(n) * float(diff.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
        layers = None
        if layers_before is not None and layers_after is not None:
            per = (np.asarray(layers_before) - np.asarray(layers_after)).mean(axis=0)
            layers = {name: float(v) for name, v in zip(layer_names, per)}
        return cls(mean, mean - half, mean + half, int(np.count_nonzero(diff)), n, layers)


def _served_rows(compiled: CompiledSystem, sets, layer_demand, layer_nodes, weights, stop=None):
    """Overall and per-layer static service loss of each failed (nodes, edges) set."""
    L = len(layer_demand)
    demand, layer = compiled.demand, compiled.node_layer
    loss = np.zeros(len(sets))
    per_layer = np.zeros((len(sets), L))
    flow = compiled.has_flow_layers
    if flow:
        # Flow layers: the v2 cascade (cascade.flowcore); a node counts demand x its served
        # fraction, so partial service and overload trips count.
        from .flowcore import flow_engine

        engine = flow_engine(compiled)
    else:
        ws = Workspace(compiled)
    for i, (nodes, edges) in enumerate(sets):
        if stop is not None and stop.is_set():  # Ctrl-C in the main thread
            break
        if flow:
            result = engine.run(nodes, edges, table=False)
            w = result[0].astype(bool)
            served = np.bincount(layer, weights=demand * result[4], minlength=L)
        else:
            ws.run(nodes.astype(compiled.index_dtype), edges.astype(compiled.index_dtype))
            w = ws.working.astype(bool)
            served = np.bincount(layer, weights=demand * w, minlength=L)
        up = np.bincount(layer, weights=w, minlength=L)
        with np.errstate(invalid="ignore", divide="ignore"):
            service = np.where(layer_demand > 0, served / np.where(layer_demand > 0, layer_demand, 1),
                               up / np.where(layer_nodes > 0, layer_nodes, 1))
        per_layer[i] = 1.0 - service
        loss[i] = float((1.0 - service) @ weights)
    return loss, per_layer


def _served_task(c_token: str, sets_token: str, lo: int, hi: int, layer_demand, layer_nodes,
                 weights):
    """A Dask task of :meth:`Evaluator._served`: rows ``lo .. hi`` of the distinct failed sets,
    on the compiled system, both from the worker's store (:func:`cascade.cluster.stored`)."""
    from .cluster import stored

    sets = stored(sets_token)[lo:hi]
    return (lo, *_served_rows(stored(c_token), sets, layer_demand, layer_nodes, weights))


class Evaluator:
    """Loss per hazard sample of a system with some measures, cached by measure set.

    Parameters
    ----------
    system : InfrastructureSystem
        The base system.
    sampler : FailureSampler
        A :class:`cascade.hazards.Scenario` or a stand-in such as :class:`FixedSampler`.
    samples : int
        Number of hazard samples (0 .. samples-1), the same for every evaluation.
    metric : {"served", "resilience"}
    strategy, crews
        Recovery strategy and crews for ``resilience`` (:func:`cascade.recovery.recover`).
    seed : int
        Seed of the ``random`` recovery strategy (sample ``i`` uses ``seed + i``, the same
        for every measure set).
    threads : int, optional
        Threads over samples for the static cascade (kernels release the GIL).
    cluster : cascade.cluster.SweepCluster, optional
        Run the static cascades of the ``served`` metric on this Dask cluster instead (the
        same numbers).
    """

    def __init__(self, system: InfrastructureSystem, sampler: FailureSampler, samples: int, *,
                 metric: str = "served", strategy: str = "greedy", crews=1, seed: int = 0,
                 threads: int | None = None, compiled: CompiledSystem | None = None, cluster=None):
        if metric not in METRICS:
            raise InputError(f"unknown metric '{metric}' (use served or resilience)")
        if cluster is not None and metric != "served":
            raise InputError("--workers/--scheduler run the served metric only (the recoveries of "
                             "--metric resilience run locally)")
        self.cluster = cluster
        if samples < 1:
            raise InputError("--samples must be at least 1")
        self.system = system
        self.compiled = compiled if compiled is not None else compile_system(system)
        self.sampler = sampler
        self.samples = int(samples)
        # per sample: the failed sets (two small arrays) and a row of losses per evaluation
        require_memory(self.samples * (400 + 8 * (len(self.compiled.layer_names) + 1)),
                       f"{self.samples:,} hazard samples")
        self.metric = metric
        self.strategy = strategy
        self.crews = crews
        self.seed = int(seed)
        self.threads = max(1, int(threads or 1))
        self.layer_names = list(self.compiled.layer_names)
        self._failures: dict = {}
        self._distinct_sets: dict = {}   # id(failures list) -> (it, inverse, distinct)
        self._cache: dict = {}
        self._recovered: dict = {}
        self._systems: dict = {}
        self.evaluations = 0
        self.recoveries = 0

    # Hazard samples on the base system; harden measures change them only where they act.
    def failures(self, immune=(), scale=None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Failed (node, edge) indices of every sample on the base system, as int64 arrays.

        Only distinct fragility scalings are sampled; ``immune`` elements are then removed
        from those sets, which is what common random numbers guarantee an immune element
        does (the sample differs only there).
        """
        scale_key = tuple(sorted((scale or {}).items()))
        key = (tuple(immune), scale_key)
        if key not in self._failures:
            if immune:
                c = self.compiled
                inode, iedge = c.split_ids(immune)
                keep_n = np.ones(c.n_nodes, bool)
                keep_n[inode] = False
                keep_e = np.ones(c.n_edges, bool)
                keep_e[iedge] = False
                self._failures[key] = [(n[keep_n[n]], e[keep_e[e]]) for n, e in self.failures((), scale)]
            else:
                c = self.compiled
                out = []
                for i in range(self.samples):
                    nodes, edges = self.sampler.sample(c, i, fragility_scale=scale or None)
                    out.append((np.unique(np.asarray(nodes, np.int64)),
                                np.unique(np.asarray(edges, np.int64))))
                self._failures[key] = out
        return self._failures[key]

    def _settled(self, structure, compiled, immune=(), scale=None):
        key = ("settled", structure, tuple(immune), tuple(sorted((scale or {}).items())))
        if key not in self._failures:
            ws = Workspace(compiled)
            out = []
            for i in range(self.samples):
                nodes, edges = self.sampler.settle(ws, i, immune=immune, fragility_scale=scale or None)
                out.append((np.unique(np.asarray(nodes, np.int64)), np.unique(np.asarray(edges, np.int64))))
            self._failures[key] = out
        return self._failures[key]

    def losses(self, measures: Iterable[Measure] = ()) -> tuple[np.ndarray, np.ndarray | None]:
        """Loss per sample with ``measures`` applied.

        Returns
        -------
        loss : ndarray of float64, shape (samples,)
            Overall loss (metric ``served``: the layers' service losses averaged with their
            weights, in [0, 1];
            ``resilience``: the recovery's ``resilience_loss``).
        layer_loss : ndarray of float64, shape (samples, layers) or None
            Per-layer static service loss (``served`` only).
        """
        measures = list(measures)
        key = frozenset(m.id for m in measures)
        if key in self._cache:
            return self._cache[key]
        structure = frozenset(m.id for m in measures if m.type != "harden")
        if structure not in self._systems:
            # harden acts through the hazard only: every harden subset shares one system
            system = apply_measures(self.system, measures) if structure else self.system
            compiled = compile_system(system, index_dtype=self.compiled.index_dtype) \
                if structure else self.compiled
            self._systems[structure] = (system, compiled)
            if len(self._systems) > SYSTEM_CACHE:
                self._systems.pop(next(iter(self._systems)))   # oldest first
        system, compiled = self._systems[structure]
        if getattr(self.sampler, "feedback", False):
            # The hazard depends on the cascade (rainfall: pumps that lose power stop
            # draining): its direct failures are settled on this structure.
            failures = self._settled(structure, compiled, *hazard_options(measures))
        else:
            failures = self.failures(*hazard_options(measures))
        if self.metric == "served":
            result = self._served(compiled, failures)
        else:
            result = self._resilience(system, compiled, failures, structure), None
        self.evaluations += 1
        self._cache[key] = result
        return result

    def _distinct(self, failures) -> tuple[np.ndarray, list]:
        """``(inverse, distinct)``: the distinct failed sets of ``failures`` (a list this
        evaluator keeps, so one object per hazard variant) and each sample's position among
        them; kept per list, so that measures on the same hazard share one object (and one
        token in the Dask workers' stores)."""
        key = id(failures)
        got = self._distinct_sets.get(key)
        if got is None or got[0] is not failures:
            first: dict = {}
            inverse = np.array([first.setdefault((n.tobytes(), e.tobytes()), len(first))
                                for n, e in failures], dtype=np.int64)
            distinct = [failures[i] for i in np.unique(inverse, return_index=True)[1]]
            got = self._distinct_sets[key] = (failures, inverse, distinct)
        return got[1], got[2]

    def _served(self, compiled: CompiledSystem, failures):
        L = len(self.layer_names)
        demand = compiled.demand
        layer = compiled.node_layer
        layer_demand = np.bincount(layer, weights=demand, minlength=L)
        layer_nodes = np.bincount(layer, minlength=L)
        # Overall loss: the layers' losses weighted by their weights (system.toml), never
        # raw demands of different layers added.
        weights = layer_weights(self.system, self.layer_names) * (layer_nodes > 0)
        weights = weights / weights.sum() if weights.sum() > 0 else np.full(L, 1.0 / max(L, 1))
        # Samples with the same failed set (frequent in floods) give the same cascade: run
        # each distinct set once and copy the result to its samples.
        inverse, distinct = self._distinct(failures)
        loss = np.zeros(len(distinct))
        per_layer = np.zeros((len(distinct), L))

        stop = threading.Event()
        args = (layer_demand, layer_nodes, weights)
        if self.cluster is not None:
            # Dask: the system once to every worker, then chunks of failed sets (served metric).
            def collect(part) -> int:
                lo, chunk_loss, chunk_layer = part
                loss[lo:lo + len(chunk_loss)] = chunk_loss
                per_layer[lo:lo + len(chunk_loss)] = chunk_layer
                return len(chunk_loss)

            # The measure set's system and the failed sets (the same for every measure that
            # does not change the hazard) go to the workers' stores once; tasks carry ranges
            # of failed sets sized on the run (cascade.cluster.SweepCluster.run_ranges).
            c_token, sets_token = self.cluster.share_all([compiled, distinct], memo=True)
            self.cluster.run_ranges(_served_task, lambda lo, hi: (c_token, sets_token, lo, hi, *args),
                                    len(distinct), collect, first=8, unit="failed sets")
            return loss[inverse], per_layer[inverse]

        def run(chunk):
            if len(chunk):
                loss[chunk], per_layer[chunk] = _served_rows(compiled, [distinct[i] for i in chunk],
                                                             *args, stop=stop)

        chunks = np.array_split(np.arange(len(distinct)), self.threads)
        if self.threads == 1:
            run(chunks[0])
        else:
            with ThreadPoolExecutor(self.threads) as pool:
                try:
                    list(pool.map(run, chunks))
                except BaseException:
                    stop.set()
                    raise
        return loss[inverse], per_layer[inverse]

    def _resilience(self, system, compiled, failures, structure: frozenset) -> np.ndarray:
        from .recovery import recover

        loss = np.zeros(len(failures))
        for i, (nodes, edges) in enumerate(failures):
            # The recovery is deterministic in (system, failed set, seed): a sample whose failed
            # set was already recovered on the same structure (harden only changes the set;
            # flood samples often repeat) reuses that result exactly.
            seed = self.seed + i if self.strategy == "random" else self.seed
            key = (structure, nodes.tobytes(), edges.tobytes(), seed)
            if key not in self._recovered:
                ids = [str(x) for x in compiled.node_ids[nodes]] + [str(x) for x in compiled.edge_ids[edges]]
                result = recover(system, ids, strategy=self.strategy, crews=self.crews,
                                 seed=seed, compiled=compiled)
                value = float(result.metrics["resilience_loss"])
                if not math.isfinite(value):
                    raise InputError(f"sample {i}: service never returns to its pre-event level, "
                                     "so the resilience loss is infinite; use --metric served")
                self._recovered[key] = value
                self.recoveries += 1
            loss[i] = self._recovered[key]
        return loss

    def benefit(self, measures: Iterable[Measure], base: Iterable[Measure] = ()) -> Benefit:
        """Paired benefit of ``base + measures`` against ``base``."""
        base = list(base)
        before, lb = self.losses(base)
        after, la = self.losses(base + list(measures))
        return Benefit.paired(before, after, lb, la, self.layer_names)


# ---------------------------------------------------------------------------------- analyses
def _per_cost(benefit: float, cost: float) -> float:
    if cost > 0:
        return benefit / cost
    return math.inf if benefit > 0 else 0.0


def why(measure: Measure, benefit: Benefit, metric: str, hits: int | None = None,
        amounts: dict | None = None) -> str:
    """One line on why a measure helps (or does not).

    ``hits`` is, for ``harden``, the number of samples in which the hazard fails the element.
    ``amounts`` maps a flow layer to (its demand, its unit): the layer's gain is then also
    given as an expected served amount in that unit.
    """
    acts = f"changes the outcome in {benefit.changed}/{benefit.samples} samples"
    if benefit.changed == 0:
        if measure.type == "backup" and metric == "served":
            return ("no static benefit: the static cascade treats backups as exhausted; "
                    "use --metric resilience")
        if measure.type == "harden" and hits:
            return (f"{measure.element} fails in {hits}/{benefit.samples} samples, but sparing it "
                    "changes nothing: it still goes down with what it depends on, or what "
                    "it serves is lost anyway")
        return "changes nothing under these hazard samples"
    timed = metric == "resilience"
    if measure.type == "backup":
        what = (f"keeps {measure.node} running {measure.hours:g} h after its supplier fails, "
                "bridging all or part of the repair")
    elif measure.type == "feed":
        what = f"{measure.node} keeps working on {measure.supplier} when its other supplier fails"
    elif measure.type == "link":
        what = f"a second path from {measure.source} to {measure.target}"
    elif measure.type == "capacity":
        what = f"{measure.element} carries up to {measure.capacity:g}"
    elif measure.type == "supply":
        what = f"{measure.node} can inject up to {measure.supply:g}"
    elif measure.type == "line":
        what = f"a new branch {measure.source} -- {measure.target} shares the flow"
    elif measure.factor is None:
        what = f"{measure.element} no longer fails in the hazard" + \
            (" (no outage, and no crew time spent on it)" if timed else "")
    else:
        what = f"{measure.element} fails less often in the hazard (threshold or median x{measure.factor:g})"
    if benefit.mean < 0:
        what += ("; but it makes things worse on average (in the time model the repair "
                 "strategy may pick other work first)" if timed else "; but it makes things worse")
    tail = ""
    if benefit.layers:
        best = max(benefit.layers.items(), key=lambda kv: kv[1])
        if best[1] > 0:
            tail = f"; {best[0]} service +{100 * best[1]:.2f} pts"
            if amounts and best[0] in amounts:
                total, unit = amounts[best[0]]
                tail += f" ({best[1] * total:.4g} {unit} served)"
        elif amounts:
            # Flow layers: a measure can cost service (more supply behind a line that then
            # trips); name the layer that loses most.
            worst = min(benefit.layers.items(), key=lambda kv: kv[1])
            if worst[1] < 0:
                tail = f"; {worst[0]} service {100 * worst[1]:.2f} pts"
                if worst[0] in amounts:
                    total, unit = amounts[worst[0]]
                    tail += f" ({worst[1] * total:.4g} {unit} served)"
    return f"{what}; {acts}{tail}"


@dataclass
class PlanStep:
    id: str
    cost: float
    benefit: Benefit          # marginal benefit over the measures picked before
    cumulative_cost: float


@dataclass
class Plan:
    """A budgeted plan: the greedy picks, and the exhaustive optimum when it was searched."""

    budget: float
    steps: list[PlanStep]
    cost: float
    benefit: Benefit                      # of the whole plan against the base system
    left_out: dict[str, float]            # last marginal benefit of every measure not picked
    best_ids: list[str] | None = None     # exhaustive optimum (None when not searched)
    best_cost: float | None = None
    best_benefit: float | None = None
    searched: int = 0                     # subsets evaluated by the exhaustive search
    note: str = ""
    single_id: str | None = None          # one affordable measure that beats the whole plan
    single_benefit: float | None = None
    single_cost: float | None = None

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.steps]

    def recommended(self) -> dict:
        """The best plan this analysis found: the exhaustive optimum when searched, else the
        greedy plan or the one measure that beats it, whichever avoids more loss.

        Returns
        -------
        dict
            ``source`` ("exhaustive", "single" or "greedy"), ``ids``, ``cost``, ``benefit``.
        """
        options = [("greedy", self.ids, self.cost, self.benefit.mean)]
        if self.single_id is not None:
            options.append(("single", [self.single_id], self.single_cost, self.single_benefit))
        if self.best_ids is not None:
            options.append(("exhaustive", list(self.best_ids), self.best_cost, self.best_benefit))
        # the better plan first; on a tie the greedy plan (it has the interval per step)
        source, ids, cost, benefit = max(options, key=lambda o: (o[3] - 1e-12 * (o[0] != "greedy")))
        return {"source": source, "ids": list(ids), "cost": cost, "benefit": float(benefit)}

    @property
    def gap(self) -> float | None:
        """Best benefit minus the greedy plan's benefit (None when not searched)."""
        return None if self.best_benefit is None else self.best_benefit - self.benefit.mean


def greedy_plan(evaluator: Evaluator, candidates: Sequence[Measure], budget: float, *,
                exhaustive_limit: int | None = None, progress: ProgressArg = None) -> Plan:
    """Pick measures under ``budget`` greedily by marginal benefit per cost.

    After each pick every remaining affordable measure is evaluated again on the system
    that holds the picks so far (so a measure covering the same weakness as a picked one
    drops to its true marginal benefit).  A measure is picked only when its marginal benefit
    is positive; ties go to the larger benefit, then the measure listed first.  When there
    are at most ``exhaustive_limit`` candidates, every subset within the budget is also
    evaluated and the best one reported, with the gap to the greedy plan.  ``progress``
    counts the evaluations of measure sets (see :mod:`cascade.progress`).
    """
    if budget < 0 or not math.isfinite(budget):
        raise InputError(f"--budget must be a non-negative number, not {budget:g}")
    if exhaustive_limit is None:
        exhaustive_limit = EXHAUSTIVE_LIMIT[evaluator.metric]
    picked: list[Measure] = []
    spent = 0.0
    steps = []
    left_out: dict[str, float] = {}
    bar = tracker(progress, 0, "budget plan", "evaluation")
    while True:
        best = None
        bar.grow(len(candidates) - len(picked))
        for m in candidates:
            if m.id in {p.id for p in picked}:
                continue
            b = evaluator.benefit([m], picked)
            bar.update()
            left_out[m.id] = b.mean
            if m.cost > budget - spent + 1e-9 or b.mean <= 0:
                continue
            score = (_per_cost(b.mean, m.cost), b.mean)
            if best is None or score > best[0]:
                best = (score, m, b)
        if best is None:
            break
        _, m, b = best
        picked.append(m)
        spent += m.cost
        left_out.pop(m.id, None)
        steps.append(PlanStep(m.id, m.cost, b, spent))
    total = evaluator.benefit(picked)
    plan = Plan(budget, steps, spent, total, left_out)
    # Greedy by ratio can be far from optimal on a knapsack; the best single affordable
    # measure is the classic safeguard (Khuller, Moss, Naor 1999): report it when it wins.
    singles = [(evaluator.benefit([m]).mean, -k, m.id) for k, m in enumerate(candidates)
               if m.cost <= budget + 1e-9]
    if singles:
        value, _, mid = max(singles)
        if value > total.mean + 1e-12:
            plan.single_id, plan.single_benefit = mid, value
            plan.single_cost = next(m.cost for m in candidates if m.id == mid)
    if len(candidates) <= exhaustive_limit:
        best_ids, best_cost, best_val, searched = [], 0.0, 0.0, 0
        bar.grow(sum(sum(m.cost for m in combo) <= budget + 1e-9 for r in range(1, len(candidates) + 1)
                     for combo in itertools.combinations(candidates, r)))
        for r in range(1, len(candidates) + 1):
            for combo in itertools.combinations(candidates, r):
                cost = sum(m.cost for m in combo)
                if cost > budget + 1e-9:
                    continue
                searched += 1
                val = evaluator.benefit(combo).mean
                bar.update()
                if val > best_val + 1e-12 or (abs(val - best_val) <= 1e-12 and cost < best_cost):
                    best_ids, best_cost, best_val = [m.id for m in combo], cost, val
        plan.best_ids, plan.best_cost, plan.best_benefit, plan.searched = best_ids, best_cost, best_val, searched
    else:
        plan.note = (f"{len(candidates)} candidates: more than {exhaustive_limit}, "
                     "so no exhaustive search")
    bar.close()
    return plan


@dataclass
class RedundancyResult:
    """Ranking of candidate measures and, with a budget, a plan.

    Attributes
    ----------
    ranking : pandas.DataFrame
        Columns ``rank, id, type, cost, benefit, benefit_low, benefit_high, benefit_per_cost``
        then ``changed`` (samples where the measure changed the loss), ``summary`` and ``why``;
        sorted by benefit per cost, then benefit, then candidate order.
    base_loss : float
        Expected loss of the base system.
    metric : str
    samples : int
    plan : Plan or None
    candidates : list of Measure
    """

    ranking: pd.DataFrame
    base_loss: float
    metric: str
    samples: int
    system: str
    plan: Plan | None
    candidates: list
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        def num(x):
            return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)

        rows = []
        by_id = {m.id: m for m in self.candidates}
        for r in self.ranking.itertuples(index=False):
            rows.append({"rank": int(r.rank), "id": r.id, "type": r.type, "cost": float(r.cost),
                         "benefit": float(r.benefit), "benefit_low": float(r.benefit_low),
                         "benefit_high": float(r.benefit_high),
                         "benefit_per_cost": num(r.benefit_per_cost), "changed": int(r.changed),
                         "why": r.why, "measure": by_id[r.id].to_dict()})
        out = {"system": self.system, "metric": self.metric, "samples": self.samples,
               **self.settings, "base_loss": float(self.base_loss),
               "interval": "Student t 95% of paired differences: mean ± t(0.975, n-1)·sd/√n",
               "ranking": rows, "plan": None}
        p = self.plan
        if p is not None:
            out["plan"] = {
                "budget": p.budget, "cost": p.cost, "benefit": p.benefit.mean,
                "benefit_low": p.benefit.low, "benefit_high": p.benefit.high,
                "steps": [{"id": s.id, "cost": s.cost, "marginal_benefit": s.benefit.mean,
                           "marginal_low": s.benefit.low, "marginal_high": s.benefit.high,
                           "cumulative_cost": s.cumulative_cost} for s in p.steps],
                "not_picked": {k: float(v) for k, v in p.left_out.items()},
                "exhaustive": None if p.best_ids is None else
                {"ids": p.best_ids, "cost": p.best_cost, "benefit": p.best_benefit,
                 "gap": p.gap, "subsets": p.searched},
                "note": p.note,
                "better_single": None if p.single_id is None else
                {"id": p.single_id, "benefit": p.single_benefit},
                "recommended": p.recommended(),
            }
        return out


def analyse(system: InfrastructureSystem, candidates: Sequence[Measure], sampler: FailureSampler,
            samples: int = 100, *, metric: str = "served", budget: float | None = None,
            strategy: str = "greedy", crews=1, seed: int = 0, threads: int | None = None,
            exhaustive_limit: int | None = None,
            compiled: CompiledSystem | None = None, progress: ProgressArg = None,
            cluster=None) -> RedundancyResult:
    """Rank candidate measures by benefit per cost and, with a budget, plan.

    Parameters
    ----------
    system : InfrastructureSystem
    candidates : sequence of Measure
        From :func:`read_candidates` or :func:`suggest`.
    sampler : FailureSampler
        A :class:`cascade.hazards.Scenario` (common random numbers) or a stand-in.
    samples : int
    metric : {"served", "resilience"}
    budget : float, optional
        Plan with :func:`greedy_plan` when given.
    strategy, crews, seed
        Recovery settings for the ``resilience`` metric.
    threads : int, optional
    exhaustive_limit : int, optional
        Search every subset within the budget when there are at most this many candidates
        (default :data:`EXHAUSTIVE_LIMIT` of the metric: 10 for served, 5 for resilience).
    progress : None, bool or callable
        Progress of the ranking (the base system, then each measure) and of the plan, in
        evaluations over all samples (see :mod:`cascade.progress`).
    cluster : cascade.cluster.SweepCluster, optional
        ``served`` metric: the cascades on this Dask cluster (see :class:`Evaluator`).

    Returns
    -------
    RedundancyResult
    """
    ev = Evaluator(system, sampler, samples, metric=metric, strategy=strategy, crews=crews,
                   seed=seed, threads=threads, compiled=compiled, cluster=cluster)
    bar = tracker(progress, len(candidates) + 1, "ranking measures", "evaluation")
    base_loss = float(ev.losses([])[0].mean())
    bar.update()
    c = ev.compiled
    hit_nodes = np.zeros(c.n_nodes, np.int64)
    hit_edges = np.zeros(c.n_edges, np.int64)
    for nodes, edges in ev.failures():
        hit_nodes[nodes] += 1
        hit_edges[edges] += 1
    amounts = None
    if c.has_flow_layers:
        from .compiled import FLOW_CODES

        demand = np.bincount(c.node_layer, weights=c.demand, minlength=len(c.layer_names))
        amounts = {name: (float(demand[k]), system.layer_unit(name) or "demand units")
                   for k, name in enumerate(c.layer_names)
                   if c.layer_rule[k] in FLOW_CODES and demand[k] > 0}
    rows = []
    for order, m in enumerate(candidates):
        b = ev.benefit([m])
        bar.update()
        hits = None
        if m.type == "harden":
            if m.element in c._node_map:
                hits = int(hit_nodes[c._node_map[m.element]])
            else:
                hits = int(hit_edges[c._edge_map[m.element]])
        rows.append({"id": m.id, "type": m.type, "cost": m.cost, "benefit": b.mean,
                     "benefit_low": b.low, "benefit_high": b.high,
                     "benefit_per_cost": _per_cost(b.mean, m.cost), "changed": b.changed,
                     "summary": m.summary(), "why": why(m, b, metric, hits, amounts), "_order": order})
    ranking = pd.DataFrame(rows, columns=["id", "type", "cost", "benefit", "benefit_low", "benefit_high",
                                          "benefit_per_cost", "changed", "summary", "why", "_order"])
    ranking = ranking.sort_values(["benefit_per_cost", "benefit", "_order"],
                                  ascending=[False, False, True], kind="stable").reset_index(drop=True)
    ranking.insert(0, "rank", np.arange(1, len(ranking) + 1))
    ranking = ranking.drop(columns="_order")
    bar.close()
    plan = None
    if budget is not None:
        plan = greedy_plan(ev, list(candidates), float(budget), exhaustive_limit=exhaustive_limit,
                           progress=progress)
    settings = {"strategy": strategy, "crews": crews} if metric == "resilience" else {}
    if c.has_flow_layers:
        # Losses count from full demand: a shortfall of the intact system is in every sample
        # (and a measure that relieves it gains in every sample).
        none = np.zeros(0, np.int64)
        settings["intact_loss"] = float(ev._served(c, [(none, none)])[0][0])
    return RedundancyResult(ranking, base_loss, metric, ev.samples, system.name, plan,
                            list(candidates), settings)


# ---------------------------------------------------------------------------------- suggestions
def node_impact(system: InfrastructureSystem, nodes: Sequence[str] | None = None,
                compiled: CompiledSystem | None = None) -> pd.DataFrame:
    """The score of each node failing alone by the static cascade (:func:`cascade.criticality.sweep`):
    the weighted sum over layers of the lost fraction of each layer's demand (unit-free;
    demands of different layers are never added).

    Returns
    -------
    pandas.DataFrame
        Columns ``id``, ``score``, sorted by score (desc), nodes lost (desc), then id.
    """
    from .criticality import sweep

    c = compiled if compiled is not None else compile_system(system)
    table = sweep(system, elements="nodes", compiled=c)[["id", "score"]]
    if nodes is not None:
        table = table[table["id"].isin(set(nodes))]
    return table.reset_index(drop=True)


def suggest(system: InfrastructureSystem, n: int, *, hours: float = SUGGEST_HOURS,
            compiled: CompiledSystem | None = None) -> list[Measure]:
    """Backup and feed candidates for the ``n`` most critical nodes that have dependencies.

    Criticality is the score of the node failing alone (:func:`node_impact`).  For each
    such node and each supplier layer of its dependency groups:

    * a ``backup`` of ``hours`` on those groups, costing
      ``BACKUP_COST_FIXED + BACKUP_COST_PER_HOUR * hours`` (50 + 2·h);
    * a ``feed`` from the nearest node (by ``x``, ``y``; else the first in file order) of the
      same layer and kind as the group's first supplier that is not already in the group,
      costing ``FEED_COST_FIXED + FEED_COST_PER_M * distance`` (100 + 0.2 per metre), or
      ``FEED_COST_NO_COORDS`` (300) without coordinates.

    Costs are placeholders in cost units for a first look; give real prices in a candidates
    file.
    """
    if n < 0:
        raise InputError("--suggest must be a non-negative number")
    deps = system.dependencies
    if n == 0 or not len(deps):
        return []
    nodes = system.nodes
    layer_of = dict(zip(nodes["id"], nodes["layer"]))
    kind_of = dict(zip(nodes["id"], nodes["kind"]))
    has_xy = nodes[["x", "y"]].notna().all(axis=1).to_numpy()
    xy = dict(zip(nodes["id"][has_xy], nodes[["x", "y"]][has_xy].to_numpy(float)))
    dependents = list(dict.fromkeys(deps["dependent"]))
    impact = node_impact(system, dependents, compiled=compiled)
    impact = impact[impact["score"] > 0].head(n)
    taken = set(system.nodes["id"]) | set(system.edges["id"])
    out = []
    for v in impact["id"]:
        rows = deps[deps["dependent"] == v]
        layers = list(dict.fromkeys(rows["supplier"].map(layer_of)))
        for layer in layers:
            mid = _fresh(f"backup-{v}-{layer}", taken)
            out.append(Measure(id=mid, type="backup", node=v, group=layer, hours=float(hours),
                               cost=BACKUP_COST_FIXED + BACKUP_COST_PER_HOUR * float(hours),
                               description=f"suggested: {hours:g} h backup for {v}'s {layer} supply"))
            lrows = rows[rows["supplier"].map(layer_of) == layer]
            keys = lrows["group"].where(lrows["group"] != "", lrows.index.astype(str))
            if keys.nunique() != 1:
                continue  # several groups on that layer: a feed would need a group name
            current = set(lrows["supplier"])
            first = lrows["supplier"].iloc[0]
            pool = [u for u in nodes["id"][(nodes["layer"] == layer) & (nodes["kind"] == kind_of[first])]
                    if u not in current and u != v]
            if not pool:
                continue
            if v in xy and all(u in xy for u in pool):
                d = np.array([np.hypot(*(xy[u] - xy[v])) for u in pool])
                pick = int(np.argmin(d))
                cost = FEED_COST_FIXED + FEED_COST_PER_M * float(d[pick])
            else:
                pick, cost = 0, FEED_COST_NO_COORDS
            mid = _fresh(f"feed-{v}-{pool[pick]}", taken)
            group = lrows["group"].iloc[0] or None
            out.append(Measure(id=mid, type="feed", node=v, supplier=pool[pick], group=group,
                               cost=round(cost, 2),
                               description=f"suggested: second {layer} feed for {v}"))
    return out


def _fresh(name: str, taken: set) -> str:
    out, k = name, 2
    while out in taken:
        out, k = f"{name}-{k}", k + 1
    taken.add(out)
    return out
