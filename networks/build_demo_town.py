"""Build networks/demo_town: a seeded mid-size town with all five lifelines.

    python networks/build_demo_town.py [--seed 2026] [--out networks/demo_town]

The town is 10 km x 8 km with a river valley running north-south through it; coordinates are
metres (EPSG:32650, UTM 50N), `elevation` is metres above the river datum.  Population lives in
350 m blocks, densest in the centre.  Each lifeline follows the usual shape of its kind:

* power: two plants (one coal, one gas-fired) -> a meshed ring of transmission substations ->
  distribution substations (some on two transmission feeds) -> radial feeders, one feeder node
  per block -> a consumer per block (demand = its population);
* water: two treatment plants on the river -> a pump station per pressure zone -> a tank ->
  the zone's meshed mains (one junction per block) -> a consumer per block;
* gas: a gate station -> a high-pressure ring of regulators -> radial district mains -> consumers
  (gas reaches about 70 % of blocks), plus a dedicated regulator for the gas-fired plant;
* transport: a road grid whose river crossings are bridges (nodes, so that they can fail);
* communication: two core routers -> a fibre ring of aggregation sites -> cell sites (demand =
  population covered) and SCADA units of the transmission substations.

Dependencies (dual feeds as groups, backups as delays): pump stations, treatment plants, cell
sites, aggregation sites, core routers and SCADA units on power; transmission substations on
their SCADA unit; the gas-fired plant on gas; the gas gate station's compressors on power.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

WIDTH, HEIGHT, BLOCK = 10_000.0, 8_000.0, 350.0

# Repair hours and costs (thousand CNY) by kind, with edges by their kind per 100 m.
REPAIR = {
    "source": (168, 5000), "substation": (48, 800), "distribution": (24, 200), "feeder": (8, 20),
    "consumer": (4, 5), "pump": (24, 300), "tank": (48, 400), "main": (12, 30), "regulator": (12, 60),
    "intersection": (24, 50), "bridge": (336, 4000), "aggregation": (12, 80), "cell": (8, 40),
    "scada": (8, 30), "drainage_pump": (24, 300),
}
EDGE_REPAIR = {"line": (2, 0.5, 10), "pipe": (4, 1.0, 15), "road": (12, 1.0, 40), "fibre": (2, 0.2, 5)}


# Drainage districts: (bank -1 west / +1 east, y from, y to, pump capacity m3/h, feeding
# substation or None for the nearest).  Each district's polygon runs from the river's edge to
# DISTRICT_WIDTH m inland (the low ground where rain ponds); the area draining into it is
# CONTRIBUTING times larger.
# The north-west district's station is older and smaller (the weak spot of the demo).
DRAINAGE = [(-1, 0, 2700, 250_000, None), (-1, 2700, 5400, 250_000, None), (-1, 5400, 8000, 120_000, None),
            (+1, 0, 2700, 250_000, None), (+1, 2700, 5400, 250_000, None), (+1, 5400, 8000, 250_000, None)]
DISTRICT_WIDTH, RIVER_EDGE, CONTRIBUTING = 1000.0, 60.0, 5.0
STORAGE_MM = 50.0


def river_x(y):
    return 5000.0 + 600.0 * np.sin(np.asarray(y) / 1500.0)


def elevation(x, y, rng):
    distance = np.abs(np.asarray(x) - river_x(y))
    return np.round(2.0 + 26.0 * (1.0 - np.exp(-distance / 1400.0)) + rng.normal(0, 0.8, np.shape(x)), 2)


class Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[dict] = []
        self.edges: list[dict] = []
        self.deps: list[dict] = []
        self.pos: dict[str, tuple[float, float]] = {}

    def node(self, id, layer, kind, x, y, demand=0.0, **attrs):
        hours, cost = REPAIR["source" if kind == "source" else kind]
        self.nodes.append({"id": id, "layer": layer, "kind": kind, "demand": float(demand),
                           "x": round(float(x), 1), "y": round(float(y), 1),
                           "repair_time": hours, "repair_cost": cost, **attrs})
        self.pos[id] = (float(x), float(y))
        return id

    def edge(self, u, v, kind, directed=False, id=None):
        (x1, y1), (x2, y2) = self.pos[u], self.pos[v]
        length = float(np.hypot(x2 - x1, y2 - y1))
        base, per100h, per100c = EDGE_REPAIR[kind]
        self.edges.append({"id": id or f"{u}->{v}", "source": u, "target": v,
                           "directed": "true" if directed else "false", "kind": kind,
                           "length": round(length, 1), "repair_time": round(base + per100h * length / 100, 1),
                           "repair_cost": round(per100c * (1 + length / 100), 1)})

    def depend(self, dependent, suppliers, group=None, delay=0.0):
        for s in suppliers:
            self.deps.append({"dependent": dependent, "supplier": s, "group": group or "",
                              "delay": float(delay)})

    def nearest(self, ids, x, y, k=1):
        pts = np.array([self.pos[i] for i in ids])
        order = np.argsort(np.hypot(pts[:, 0] - x, pts[:, 1] - y), kind="stable")
        return [ids[i] for i in order[:k]]


def radial_tree(root_xy, points):
    """Parent of each point in a radial tree grown from the root, nearest-first (Prim)."""
    pts = np.asarray(points)
    order = np.argsort(np.hypot(pts[:, 0] - root_xy[0], pts[:, 1] - root_xy[1]), kind="stable")
    parents = np.full(len(pts), -1)
    placed = [root_xy]
    placed_idx = [-1]
    for i in order:
        d = np.hypot(np.array([p[0] for p in placed]) - pts[i, 0], np.array([p[1] for p in placed]) - pts[i, 1])
        parents[i] = placed_idx[int(np.argmin(d))]
        placed.append(tuple(pts[i]))
        placed_idx.append(i)
    return parents


def build(seed: int = 2026) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    b = Builder(seed)
    rng = b.rng
    # Blocks and population: a dense centre and suburbs.
    bx = np.arange(BLOCK / 2, WIDTH, BLOCK)
    by = np.arange(BLOCK / 2, HEIGHT, BLOCK)
    gx, gy = np.meshgrid(bx, by)
    gx, gy = gx.ravel(), gy.ravel()
    wet = np.abs(gx - river_x(gy)) < 120          # no block in the river itself
    gx, gy = gx[~wet], gy[~wet]
    r = np.hypot(gx - WIDTH / 2, gy - HEIGHT / 2)
    population = np.round(rng.gamma(4.0, 1.0, len(gx)) * (120 + 900 * np.exp(-r / 2200))).astype(int)
    blocks = np.arange(len(gx))

    # ---------------------------------------------------------------- power
    b.node("P-PLANT-1", "power", "source", 1200, 7000, asset="coal plant")
    b.node("P-PLANT-2", "power", "source", 8900, 1200, asset="gas-fired plant")
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False) + 0.2
    tsubs = [b.node(f"P-SUB-T{i + 1:02d}", "power", "substation", WIDTH / 2 + 3300 * np.cos(a),
                    HEIGHT / 2 + 2700 * np.sin(a), asset="110 kV substation") for i, a in enumerate(angles)]
    for i in range(12):
        b.edge(tsubs[i], tsubs[(i + 1) % 12], "line")
    for i in (0, 3, 6, 9):
        b.edge(tsubs[i], tsubs[(i + 6) % 12], "line", id=f"{tsubs[i]}~{tsubs[(i + 6) % 12]}")
    for plant in ("P-PLANT-1", "P-PLANT-2"):
        for t in b.nearest(tsubs, *b.pos[plant], k=2):
            b.edge(plant, t, "line")
    weights = population / population.sum()
    chosen = []
    for i in rng.choice(blocks, size=400, replace=False, p=weights):
        if all(np.hypot(gx[i] - gx[j], gy[i] - gy[j]) > 1100 for j in chosen):
            chosen.append(i)
        if len(chosen) == 40:
            break
    dsubs = []
    for k, i in enumerate(chosen):
        d = b.node(f"P-SUB-D{k + 1:03d}", "power", "distribution", gx[i] + 60, gy[i] + 60,
                   asset="10 kV substation")
        dsubs.append(d)
        feeds = b.nearest(tsubs, gx[i], gy[i], k=2)
        b.edge(feeds[0], d, "line", directed=True)
        if rng.random() < 0.3:
            b.edge(feeds[1], d, "line", directed=True)
    dpos = np.array([b.pos[d] for d in dsubs])
    owner = np.argmin(np.hypot(gx[:, None] - dpos[None, :, 0], gy[:, None] - dpos[None, :, 1]), axis=1)
    feeder = {}
    for k, d in enumerate(dsubs):
        mine = blocks[owner == k]
        parents = radial_tree(b.pos[d], np.c_[gx[mine], gy[mine]])
        for i in mine:
            feeder[i] = b.node(f"P-F{i:04d}", "power", "feeder", gx[i] - 40, gy[i] - 40)
        for i, p in zip(mine, parents):
            b.edge(d if p < 0 else feeder[mine[p]], feeder[i], "line", directed=True)
        for i in mine:
            c = b.node(f"P-C{i:04d}", "power", "consumer", gx[i] - 40, gy[i] + 20, population[i])
            b.edge(feeder[i], c, "line", directed=True)
    feeders = list(feeder.values())

    # ---------------------------------------------------------------- communication
    b.node("C-CORE-1", "communication", "source", 4300, 4300, asset="core router")
    b.node("C-CORE-2", "communication", "source", 6000, 3500, asset="core router")
    b.edge("C-CORE-1", "C-CORE-2", "fibre")
    aggs = [b.node(f"C-AGG-{i + 1:02d}", "communication", "aggregation",
                   WIDTH / 2 + 2200 * np.cos(a), HEIGHT / 2 + 1800 * np.sin(a))
            for i, a in enumerate(np.linspace(0, 2 * np.pi, 10, endpoint=False))]
    for i in range(10):
        b.edge(aggs[i], aggs[(i + 1) % 10], "fibre")
        b.edge(b.nearest(["C-CORE-1", "C-CORE-2"], *b.pos[aggs[i]])[0], aggs[i], "fibre")
    cells = []
    for cx in np.arange(500, WIDTH, 900):
        for cy in np.arange(450, HEIGHT, 900):
            if abs(cx - river_x(cy)) < 150:
                continue
            c = b.node(f"C-CELL-{len(cells) + 1:03d}", "communication", "cell", cx, cy)
            cells.append(c)
            b.edge(b.nearest(aggs, cx, cy)[0], c, "fibre")
    cpos = np.array([b.pos[c] for c in cells])
    covered = np.argmin(np.hypot(gx[:, None] - cpos[None, :, 0], gy[:, None] - cpos[None, :, 1]), axis=1)
    for k, c in enumerate(cells):
        b.nodes[[n["id"] for n in b.nodes].index(c)]["demand"] = float(population[covered == k].sum())
    scadas = []
    for t in tsubs:
        x, y = b.pos[t]
        s = b.node(f"C-SCADA-{t[-3:]}", "communication", "scada", x + 80, y + 80)
        scadas.append(s)
        b.edge(b.nearest(aggs, x, y)[0], s, "fibre")

    # ---------------------------------------------------------------- water
    tps = [b.node("W-TP-1", "water", "source", river_x(7300) - 400, 7300, asset="treatment plant"),
           b.node("W-TP-2", "water", "source", river_x(5200) + 400, 5200, asset="treatment plant")]
    zone_xy = [(1800, 6000), (4000, 6600), (7000, 6500), (8600, 4800), (2000, 3300), (4300, 2600),
               (6800, 3000), (3500, 900)]
    pumps, tanks = [], []
    for z, (x, y) in enumerate(zone_xy):
        p = b.node(f"W-PS-{z + 1:02d}", "water", "pump", x, y, asset="pump station")
        t = b.node(f"W-TK-{z + 1:02d}", "water", "tank", x + 150, y + 150)
        pumps.append(p)
        tanks.append(t)
        b.edge(b.nearest(tps, x, y)[0], p, "pipe", directed=True)
        b.edge(p, t, "pipe", directed=True)
    # Two trunk mains give pump stations a second path from the other plant.
    b.edge("W-TP-1", pumps[3], "pipe", directed=True, id="W-TRUNK-1")
    b.edge("W-TP-2", pumps[4], "pipe", directed=True, id="W-TRUNK-2")
    zpos = np.array(zone_xy)
    zone = np.argmin(np.hypot(gx[:, None] - zpos[None, :, 0], gy[:, None] - zpos[None, :, 1]), axis=1)
    junction = {i: b.node(f"W-J{i:04d}", "water", "main", gx[i] + 40, gy[i] - 40) for i in blocks}
    cols = np.round((gx - BLOCK / 2) / BLOCK).astype(int)
    rows = np.round((gy - BLOCK / 2) / BLOCK).astype(int)
    cell_of = {(c, r_): i for i, c, r_ in zip(blocks, cols, rows)}
    for i in blocks:
        for dc, dr in ((1, 0), (0, 1)):
            j = cell_of.get((cols[i] + dc, rows[i] + dr))
            if j is not None and zone[j] == zone[i]:
                b.edge(junction[i], junction[j], "pipe")
    # A zone cut in two by the river gets a crossing main to its largest part.
    import networkx as nx
    mains = nx.Graph()
    mains.add_nodes_from(junction.values())
    mains.add_edges_from((e["source"], e["target"]) for e in b.edges if e["source"].startswith("W-J"))
    for z in range(len(tanks)):
        parts = sorted(nx.connected_components(mains.subgraph(junction[i] for i in blocks[zone == z])),
                       key=lambda c: (-len(c), min(c)))
        for part in parts[1:]:
            main_part = sorted(parts[0])
            u = sorted(part)[0]
            b.edge(u, b.nearest(main_part, *b.pos[u])[0], "pipe", id=f"{u}~crossing")
    for z, t in enumerate(tanks):
        mine = blocks[zone == z]
        for j in b.nearest([junction[i] for i in mine], *b.pos[t], k=2):
            b.edge(t, j, "pipe", directed=True)
    for i in blocks:
        c = b.node(f"W-C{i:04d}", "water", "consumer", gx[i] + 40, gy[i] + 20, population[i])
        b.edge(junction[i], c, "pipe", directed=True)

    # ---------------------------------------------------------------- gas
    b.node("G-GATE-1", "gas", "source", 9700, 4200, asset="gate station")
    regs = [b.node(f"G-REG-{i + 1:02d}", "gas", "regulator", WIDTH / 2 + 3000 * np.cos(a),
                   HEIGHT / 2 + 2400 * np.sin(a)) for i, a in enumerate(np.linspace(0, 2 * np.pi, 16, endpoint=False))]
    for i in range(16):
        b.edge(regs[i], regs[(i + 1) % 16], "pipe")
    for r_ in b.nearest(regs, 9700, 4200, k=2):
        b.edge("G-GATE-1", r_, "pipe")
    b.node("G-REG-PLANT", "gas", "regulator", 8800, 1400, asset="plant regulator")
    b.edge(b.nearest(regs, 8800, 1400)[0], "G-REG-PLANT", "pipe", directed=True)
    gas_blocks = blocks[rng.random(len(blocks)) < 0.7]
    rpos = np.array([b.pos[r_] for r_ in regs])
    district = np.argmin(np.hypot(gx[gas_blocks, None] - rpos[None, :, 0], gy[gas_blocks, None] - rpos[None, :, 1]), axis=1)
    for k, r_ in enumerate(regs):
        mine = gas_blocks[district == k]
        parents = radial_tree(b.pos[r_], np.c_[gx[mine], gy[mine]])
        gj = {i: b.node(f"G-J{i:04d}", "gas", "main", gx[i] + 20, gy[i] + 60) for i in mine}
        for i, p in zip(mine, parents):
            b.edge(r_ if p < 0 else gj[mine[p]], gj[i], "pipe", directed=True)
        for i in mine:
            c = b.node(f"G-C{i:04d}", "gas", "consumer", gx[i] + 20, gy[i] - 60, population[i])
            b.edge(gj[i], c, "pipe", directed=True)

    # ---------------------------------------------------------------- transport
    sx = np.arange(0, WIDTH + 1, 330.0)
    sy = np.arange(0, HEIGHT + 1, 330.0)
    inter = {}
    for i, x in enumerate(sx):
        for j, y in enumerate(sy):
            if abs(x - river_x(y)) < 60:
                continue
            inter[i, j] = b.node(f"R-{i:02d}-{j:02d}", "transport", "intersection", x, y)
    bridge_rows = set(np.linspace(2, len(sy) - 3, 6).round().astype(int))
    n_bridge = 0
    for (i, j), u in inter.items():
        for di, dj in ((1, 0), (0, 1)):
            v = inter.get((i + di, j + dj))
            if v is None:
                continue
            x1, x2 = sx[i], sx[i + di]
            crosses = (x1 - river_x(sy[j])) * (x2 - river_x(sy[j + dj])) < 0
            if not crosses:
                b.edge(u, v, "road")
            elif dj == 0 and j in bridge_rows:
                n_bridge += 1
                br = b.node(f"R-BR-{n_bridge:02d}", "transport", "bridge", river_x(sy[j]), sy[j])
                b.edge(u, br, "road")
                b.edge(br, v, "road")

    # ---------------------------------------------------------------- drainage
    # Rain pump stations of the low-lying districts along the river (a layer of their own,
    # rule "none": a station works unless it fails or loses power; no demand, so the layer's
    # service is the share of stations working).  DRAINAGE lists each district: its bank,
    # its band of y, and the station's capacity in m3/h.
    drains = []
    for k, (side, y0, y1, capacity, _) in enumerate(DRAINAGE):
        yc = (y0 + y1) / 2
        d = b.node(f"D-PS-{k + 1:02d}", "drainage", "drainage_pump", river_x(yc) + side * 260, yc,
                   asset="rain pump station", pump_capacity=float(capacity))
        drains.append(d)

    # ---------------------------------------------------------------- dependencies
    for k, p in enumerate(pumps):
        feeds = b.nearest(dsubs, *b.pos[p], k=2)
        if k in (0, 4, 5):        # the big zones' stations have a dual-circuit feed
            b.depend(p, feeds, group="power")
        elif k in (2, 7):         # diesel backup for 12 hours
            b.depend(p, feeds[:1], delay=12)
        else:
            b.depend(p, feeds[:1])
    for t in tps:
        b.depend(t, b.nearest(tsubs, *b.pos[t], k=2), group="power", delay=6)
    for c in cells:
        battery = float(rng.choice([0, 2, 4, 4, 8]))
        b.depend(c, b.nearest(feeders, *b.pos[c], k=1), delay=battery)
    for a in aggs:
        b.depend(a, b.nearest(dsubs, *b.pos[a], k=2), group="power", delay=8)
    for core in ("C-CORE-1", "C-CORE-2"):
        b.depend(core, b.nearest(tsubs, *b.pos[core], k=1), delay=48)
    for s in scadas:
        b.depend(s, b.nearest(dsubs, *b.pos[s], k=2), group="power", delay=8)
    for t, s in zip(tsubs, scadas):
        b.depend(t, [s], delay=2)
    for d, (*_, feed) in zip(drains, DRAINAGE):
        b.depend(d, [feed] if feed else b.nearest(dsubs, *b.pos[d], k=1), group="power")
    b.depend("P-PLANT-2", ["G-REG-PLANT"])
    b.depend("G-GATE-1", b.nearest(dsubs, 9700, 4200, k=1), delay=24)

    nodes = pd.DataFrame(b.nodes)
    nodes["elevation"] = elevation(nodes["x"], nodes["y"], rng)
    nodes["asset"] = nodes["asset"].fillna("")
    return nodes, pd.DataFrame(b.edges), pd.DataFrame(b.deps)


# ---------------------------------------------------------------------- the flow version
# networks/demo_town_flow: the same assets and ids as a v2 flow system (docs/format.md (v2)).
# Amounts per person: power 0.8 kW (MW in the file), water 200 L/day (m3/h), gas 0.02 m3/h.
KW_PER_PERSON, WATER_M3H_PER_PERSON, GAS_M3H_PER_PERSON = 0.8, 0.2 / 24, 0.02
# Reactances (per unit on 100 MVA): 110 kV lines 0.4 ohm/km over Z_base = 121 ohm; a 110/10 kV
# transformer with its line 0.08 pu; 10 kV feeders 0.35 ohm/km over Z_base = 1 ohm; service drops.
X_TRANSMISSION_PER_KM, X_TRANSFORMER, X_FEEDER_PER_KM, X_DROP = 0.4 / 121, 0.08, 0.35, 0.01
# Ratings of the 110 kV lines (ring, chords, plant lines) and of the transformer feeds of the
# distribution substations: N-1 secure, as a planner rates them: the largest flow the line
# carries with the grid intact or after the loss of any one 110 kV substation, line or feed
# (before any trip), times N1_MARGIN, and at least the intact flow over a loading drawn in
# LOADING (seeded) and MIN_RATING MW.  The weak spot of the demo: the WEAK_LINES ring lines
# that pick up most of P-SUB-T03's power when it is lost are rated for the intact grid only,
# at a loading of WEAK_LOADING.  Feeders and service drops are not limiting (no rating).
N1_MARGIN, LOADING, MIN_RATING, WEAK_SUBSTATION, WEAK_LINES, WEAK_LOADING = 1.05, (0.45, 0.8), 10.0, "P-SUB-T03", 2, 0.9
# Plants: supply and dispatch as shares of the town's power demand (P-PLANT-1 coal, P-PLANT-2 gas).
PLANT_SUPPLY, PLANT_DISPATCH = {"P-PLANT-1": 0.75, "P-PLANT-2": 0.55}, {"P-PLANT-1": 0.6, "P-PLANT-2": 0.4}
# Water: each treatment plant can make TP_MARGIN times its own zones' demand; a works-to-pump main carries
# ZONE_MARGIN of its zone's demand, a trunk main TRUNK_SHARE of its zone's, each of a tank's two
# outlets TANK_OUTLET of the zone's; zone mains are not limiting.
TP_MARGIN, ZONE_MARGIN, TRUNK_SHARE, TANK_OUTLET = 1.1, 1.25, 0.5, 0.65
# Gas: the gate station supplies GATE_SUPPLY of the demand; its two pipes GATE_PIPE of it each,
# ring pipes RING_PIPE; district mains are not limiting.
GATE_SUPPLY, GATE_PIPE, RING_PIPE = 1.2, 0.65, 0.45


def build_flow(seed: int = 2026):
    """The demo town's tables with the v2 columns: ``supply``, ``dispatch``, ``capacity``,
    ``reactance`` (power), amounts in MW and m3/h instead of people.  The power lines get their
    ratings in :func:`flow_system`, from the grid's DC flows.
    """
    nodes, edges, deps = build(seed)
    layer = dict(zip(nodes["id"], nodes["layer"]))
    kind = dict(zip(nodes["id"], nodes["kind"]))
    population = nodes["demand"].copy()
    per = {"power": KW_PER_PERSON / 1000, "water": WATER_M3H_PER_PERSON, "gas": GAS_M3H_PER_PERSON}
    for name, factor in per.items():
        sel = nodes["layer"] == name
        nodes.loc[sel, "demand"] = (population[sel] * factor).round(4)
    total = {name: float(nodes.loc[nodes["layer"] == name, "demand"].sum()) for name in per}
    nodes["supply"] = np.nan
    nodes["dispatch"] = np.nan
    for plant in PLANT_SUPPLY:
        i = nodes.index[nodes["id"] == plant][0]
        nodes.loc[i, "supply"] = round(PLANT_SUPPLY[plant] * total["power"], 1)
        nodes.loc[i, "dispatch"] = round(PLANT_DISPATCH[plant] * total["power"], 1)
    nodes.loc[nodes["id"] == "G-GATE-1", "supply"] = round(GATE_SUPPLY * total["gas"], 1)

    # Water zones: a pump station, its tank and the junctions the tank feeds, by the builder's
    # ids (W-PS-zz -> W-TK-zz -> W-Jxxxx ...); a zone's demand is its consumers'.
    src_of = {}
    for u, v in zip(edges["source"], edges["target"]):
        src_of.setdefault(v, []).append(u)
    zone_of_junction = {}
    adjacency = {}
    for u, v in zip(edges["source"], edges["target"]):
        if layer[u] == "water" and kind[u] in ("main", "tank") and kind[v] == "main":
            adjacency.setdefault(u, []).append(v)
            if kind[u] == "main":
                adjacency.setdefault(v, []).append(u)
    for tank in (n for n in nodes["id"] if kind[n] == "tank"):
        stack = list(adjacency.get(tank, []))
        while stack:
            j = stack.pop()
            if j not in zone_of_junction:
                zone_of_junction[j] = tank
                stack.extend(adjacency.get(j, []))
    demand = dict(zip(nodes["id"], nodes["demand"]))
    zone_demand: dict[str, float] = {}
    for u, v in zip(edges["source"], edges["target"]):
        if layer[v] == "water" and kind[v] == "consumer":
            zone_demand[zone_of_junction[u]] = zone_demand.get(zone_of_junction[u], 0.0) + demand[v]
    for tp in ("W-TP-1", "W-TP-2"):     # its own zones' demand, with a margin
        own = sum(zone_demand["W-TK" + v[4:]] for u, v, e in zip(edges["source"], edges["target"], edges["id"])
                  if u == tp and not e.startswith("W-TRUNK"))
        nodes.loc[nodes["id"] == tp, "supply"] = round(TP_MARGIN * own, 1)
    gate_pipes = {(u, v) for u, v in zip(edges["source"], edges["target"]) if u == "G-GATE-1"}

    capacity, reactance = [], []
    for e, u, v, length in zip(edges["id"], edges["source"], edges["target"], edges["length"]):
        cap, x = np.nan, np.nan
        if layer[u] == "power":
            if kind[v] in ("substation", "source") or kind[u] == "source":
                x = max(0.001, X_TRANSMISSION_PER_KM * length / 1000)
            elif kind[v] == "distribution":
                x = X_TRANSFORMER + X_FEEDER_PER_KM * length / 1000 / 10
            elif kind[v] == "feeder":
                x = max(0.001, X_FEEDER_PER_KM * length / 1000)
            else:
                x = X_DROP
            x = round(float(x), 5)
        elif layer[u] == "water":
            if e.startswith("W-TRUNK"):
                cap = TRUNK_SHARE * zone_demand["W-TK" + v[4:]]
            elif kind[u] == "source":
                cap = ZONE_MARGIN * zone_demand["W-TK" + v[4:]]
            elif kind[u] == "tank":
                cap = TANK_OUTLET * zone_demand[u]
        elif layer[u] == "gas":
            if (u, v) in gate_pipes:
                cap = GATE_PIPE * total["gas"]
            elif kind[u] == "regulator" and kind[v] == "regulator" and v != "G-REG-PLANT":
                cap = RING_PIPE * total["gas"]
        capacity.append(cap if np.isnan(cap) else round(float(cap), 1))
        reactance.append(x)
    edges["capacity"] = capacity
    edges["reactance"] = reactance
    return nodes, edges, deps


FLOW_RULES = {"power": "dcflow", "water": "flow", "gas": "flow", "communication": "source",
              "transport": "giant", "drainage": "none"}
FLOW_UNITS = {"power": "MW", "water": "m3/h", "gas": "m3/h", "communication": "people"}


def _rated(nodes, edges):
    """The power lines that get a rating: 110 kV lines and transformer feeds."""
    kind = dict(zip(nodes["id"], nodes["kind"]))
    return [e for e, u, v in zip(edges["id"], edges["source"], edges["target"])
            if kind[u] in ("source", "substation") and kind[v] in ("source", "substation", "distribution")]


def flow_system(seed: int = 2026):
    """The flow town as an InfrastructureSystem: DC flows of the unrated grid, intact and after
    each single 110 kV contingency, then the ratings from them (see N1_MARGIN)."""
    from cascade import InfrastructureSystem, simulate

    nodes, edges, deps = build_flow(seed)

    def make():
        return InfrastructureSystem.from_tables(nodes, edges, deps, name="demo_town_flow", crs="EPSG:32650",
                                                rules=FLOW_RULES, units=FLOW_UNITS)

    rated = _rated(nodes, edges)
    unrated = make()
    intact = simulate(unrated).to_dict()["flows"]
    substations = [v for v, k in zip(nodes["id"], nodes["kind"]) if k == "substation"]
    worst = {e: abs(intact.get(e, 0.0)) for e in rated}
    after: dict[str, dict] = {}
    for outage in substations + rated:
        flows = simulate(unrated, [outage]).to_dict()["flows"]
        after[outage] = flows
        for e in rated:
            worst[e] = max(worst[e], abs(flows.get(e, 0.0)))
    rng = np.random.default_rng(seed + 1)        # its own stream: the v1 town stays as it is
    kind = dict(zip(nodes["id"], nodes["kind"]))
    ends = dict(zip(edges["id"], zip(edges["source"], edges["target"])))
    rating = {e: max(N1_MARGIN * worst[e], abs(intact.get(e, 0.0)) / rng.uniform(*LOADING), MIN_RATING)
              for e in rated}
    ring = [e for e in rated if kind[ends[e][0]] == kind[ends[e][1]] == "substation"
            and WEAK_SUBSTATION not in ends[e]]
    pickup = sorted(ring, key=lambda e: (-(abs(after[WEAK_SUBSTATION].get(e, 0.0)) - abs(intact.get(e, 0.0))), e))
    for e in pickup[:WEAK_LINES]:
        rating[e] = max(abs(intact.get(e, 0.0)) / WEAK_LOADING, 1.0)
    edges["capacity"] = [round(rating[e], 1) if e in rating else c for e, c in zip(edges["id"], edges["capacity"])]
    return make()


def catchments() -> dict:
    """The drainage districts as a GeoJSON FeatureCollection (cascade.rainfall's format)."""
    features = []
    for k, (side, y0, y1, _, _) in enumerate(DRAINAGE):
        ys = np.linspace(y0, y1, int((y1 - y0) // 100) + 1)
        edge = [(float(river_x(y) + side * RIVER_EDGE), float(y)) for y in ys]
        inland = [(float(river_x(y) + side * DISTRICT_WIDTH), float(y)) for y in ys[::-1]]
        ring = [[round(x, 1), round(y, 1)] for x, y in edge + inland + edge[:1]]
        polygon_area = (DISTRICT_WIDTH - RIVER_EDGE) * (y1 - y0)      # a sheared strip
        features.append({"type": "Feature",
                         "geometry": {"type": "Polygon", "coordinates": [ring]},
                         "properties": {"id": f"{'WE'[side > 0]}{k % 3 + 1}",
                                        "area_m2": round(CONTRIBUTING * polygon_area),
                                        "storage_mm": STORAGE_MM, "pumps": [f"D-PS-{k + 1:02d}"]}})
    return {"type": "FeatureCollection", "name": "demo_town drainage districts",
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32650"}},
            "features": features}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "demo_town")
    parser.add_argument("--flow-out", type=Path, default=Path(__file__).parent / "demo_town_flow",
                        help="where the flow version goes (docs/format.md (v2))")
    parser.add_argument("--catchments", type=Path,
                        default=Path(__file__).parent.parent / "scenarios" / "demo_town_catchments.geojson")
    args = parser.parse_args()
    from cascade import InfrastructureSystem, write_system

    nodes, edges, deps = build(args.seed)
    system = InfrastructureSystem.from_tables(
        nodes, edges, deps, name="demo_town", crs="EPSG:32650",
        rules={"power": "source", "water": "source", "gas": "source", "communication": "source",
               "transport": "giant", "drainage": "none"},
        # demand is the population a consumer, cell site or gas customer block serves
        units={"power": "people", "water": "people", "gas": "people", "communication": "people"})
    write_system(system, args.out)
    print(f"wrote {args.out}: {len(nodes)} nodes, {len(edges)} edges, {len(deps)} dependency rows")
    flow = flow_system(args.seed)
    write_system(flow, args.flow_out)
    print(f"wrote {args.flow_out}: {len(flow.nodes)} nodes, {len(flow.edges)} edges, "
          f"{len(flow.dependencies)} dependency rows (flow layers)")
    import json

    args.catchments.write_text(json.dumps(catchments(), indent=1) + "\n")
    print(f"wrote {args.catchments}: {len(DRAINAGE)} drainage districts")


if __name__ == "__main__":
    main()
