"""How the N-1 sweep's cost per element depends on memory order (issue 15), a script.

For ``synthetic_lifelines(n)`` at each size, the kernel's time per element over every node
(:func:`cascade.criticality.core_sweep`, one thread, ``stats["kernel_s"]``, set-up excluded; the
fastest of ``--repeats``), with

* ``index``: elements visited in node order (``criticality.FOREST_ORDER = False``, the default);
* ``forest``: elements visited in the supply forest's preorder (``FOREST_ORDER = True``);
* ``renumbered-forest``: the nodes table reordered by that preorder before compiling, so each
  subtree is a run of consecutive indices (elements in node order);
* ``renumbered-random``: the nodes table shuffled (seed 1) before compiling.

Every variant's answers are checked equal to the first's (matched by node id).  Usage:
``python benchmarks/sweep_order.py [--sizes 10000 100000 1000000] [--repeats 2]``.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def forest_preorder(c) -> np.ndarray:
    """Node indices in the start state's supply-forest preorder (``_core.forest_rank``)."""
    from cascade import Workspace, _core

    ws = Workspace(c)
    ws.run()
    n, idx = c.n_nodes, c.index_dtype
    parent, par_edge = np.zeros(n, idx), np.full(n, -1, idx)
    child_ptr, child_idx, rank = np.zeros(n + 1, idx), np.zeros(n, idx), np.zeros(n, idx)
    _core.supply_forest(c.adj_ptr, c.adj_nbr, c.adj_edge, c.adj_fwd, c.layer_ptr, c.layer_nodes,
                        c.layer_rule, c.is_source, ws.working, ws.edge_failed, parent, par_edge,
                        child_ptr, child_idx, np.zeros(n, idx))
    _core.forest_rank(parent, child_ptr, child_idx, np.zeros(n, idx), rank)
    return np.argsort(rank)


def per_element(c, forest_order: bool, repeats: int):
    from cascade import criticality

    el = np.arange(c.n_nodes).astype(c.index_dtype)
    best, out = np.inf, None
    old = criticality.FOREST_ORDER
    try:
        criticality.FOREST_ORDER = forest_order
        for _ in range(repeats):
            stats = {}
            out = criticality.core_sweep(c, el, np.full(len(el), -1, c.index_dtype), threads=1,
                                         stats=stats)
            best = min(best, stats["kernel_s"] / len(el))
    finally:
        criticality.FOREST_ORDER = old
    return best, out


def main(argv=None) -> int:
    from cascade import InfrastructureSystem, compile_system
    from cascade.criticality import synthetic_lifelines

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"{'nodes':>9} {'index':>8} {'forest':>8} {'renumbered-forest':>18} {'renumbered-random':>18}"
          "  (us per element, kernel only, one thread)", flush=True)
    for size in args.sizes:
        system = synthetic_lifelines(size, seed=0)
        c = compile_system(system)
        ids = np.asarray(c.node_ids)
        row, want = [], None
        variants = [(c, False), (c, True)]
        for order in (forest_preorder(c), np.random.default_rng(1).permutation(c.n_nodes)):
            nodes = system.nodes.set_index("id").loc[ids[order]].reset_index()
            variants.append((compile_system(InfrastructureSystem.from_tables(
                nodes, system.edges, system.dependencies, rules=system.rules)), False))
        for cc, forest in variants:
            each, out = per_element(cc, forest, args.repeats)
            pos = {v: i for i, v in enumerate(np.asarray(cc.node_ids))}
            back = np.array([pos[v] for v in ids])
            got = (out[0][back], out[2][back])
            if want is None:
                want = got
            assert all(np.array_equal(a, b) for a, b in zip(want, got)), "answers differ"
            row.append(each * 1e6)
        print(f"{c.n_nodes:>9} {row[0]:>8.2f} {row[1]:>8.2f} {row[2]:>18.2f} {row[3]:>18.2f}", flush=True)
        del system, c, variants
    return 0


if __name__ == "__main__":
    sys.exit(main())
