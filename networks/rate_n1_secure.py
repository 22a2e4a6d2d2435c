"""Rate the branches of a ``dcflow`` layer so that the intact grid is N-1 secure.

    python networks/rate_n1_secure.py SYSTEM [--layer power] [--step 10] [--out DIR]

Many test grids come without thermal ratings: MATPOWER's IEEE cases leave ``RATE_A`` at 0
(unlimited), and pandapower's converted ``case118`` gives every line ``max_i_ka`` = 41.4 kA and
every transformer 9 900 MVA, which ``cascade import pandapower`` reads as 9 900 MW.  Planners rate
a transmission grid so that it survives the loss of any one branch (the N-1 criterion); this
script does the same: with every rating of the layer lifted, it runs the DC power flow of the
intact grid and of each single-branch outage, and rates every branch at the largest flow it
carries in any of them, rounded up to the next ``--step`` (MW, at least one step).  No single
outage then trips anything, and a double outage can start a real overload cascade.  The ratings
are an assumption of this script, not data of the grid: say so wherever they are used.

The system is written back in place (or to ``--out``) with the new ``capacity`` column.
"""
from __future__ import annotations

import argparse

import numpy as np

from cascade import compile_system, read_system, simulate, write_system


def n1_ratings(system, layer: str = "power", step: float = 10.0) -> np.ndarray:
    """Ratings (one per row of ``system.edges``, NaN off ``layer``): the largest |flow| of each
    branch of ``layer`` over the intact grid and every single-branch outage, rounded up to
    ``step``."""
    if system.layer_rules().get(layer) != "dcflow":
        raise SystemExit(f"layer '{layer}' is not a dcflow layer of {system.name}")
    unlimited = system.copy()
    unlimited.edges["capacity"] = np.nan                 # pure post-outage flows, no trips
    compiled = compile_system(unlimited)
    rows = compiled.edge_index(unlimited.edges["id"])   # edge table row -> compiled edge
    in_layer = np.asarray(compiled.layer_names, object)[compiled.node_layer[compiled.edge_src]] == layer
    worst = np.abs(simulate(unlimited, compiled=compiled).flows)
    for edge in np.flatnonzero(in_layer):
        worst = np.fmax(worst, np.abs(simulate(unlimited, [compiled.edge_ids[edge]], compiled=compiled).flows))
    rating = np.maximum(np.ceil(np.nan_to_num(worst) / step), 1.0) * step
    return np.where(in_layer, rating, np.nan)[rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("system")
    parser.add_argument("--layer", default="power")
    parser.add_argument("--step", type=float, default=10.0, help="round ratings up to this (MW)")
    parser.add_argument("--out", help="write here instead of over SYSTEM")
    args = parser.parse_args()
    system = read_system(args.system)
    ratings = n1_ratings(system, args.layer, args.step)
    keep = np.isnan(ratings)
    system.edges["capacity"] = np.where(keep, system.edges.get("capacity", np.nan), ratings)
    write_system(system, args.out or args.system)
    print(f"{args.out or args.system}: rated {int((~keep).sum())} branches of '{args.layer}' N-1 secure "
          f"({np.nanmin(ratings):g} to {np.nanmax(ratings):g} MW)")


if __name__ == "__main__":
    main()
