"""How the N-1 sweep's cost per element depends on memory order (issue 15), a script.

For ``synthetic_lifelines(n)`` at each size, the kernel's time per element over every node
(:func:`cascade.criticality.core_sweep`, one thread, ``stats["kernel_s"]``) and the set-up of the
same call (``stats["setup_s"]``), with

* ``index``: elements visited in node order, no renumbering (``criticality.RENUMBER = False``,
  ``FOREST_ORDER = False``);
* ``forest``: elements visited in the supply forest's preorder, no renumbering
  (``FOREST_ORDER = True``);
* ``renumbered``: the kernel's arrays renumbered by that preorder inside ``core_sweep``
  (``criticality._Renumbered``, ``RENUMBER = True``, thresholds lowered to 0), elements in it;
* ``recompiled-forest``: the nodes table reordered by that preorder before compiling, so each
  subtree is a run of consecutive indices (elements in node order, no renumbering);
* ``recompiled-random``: the nodes table shuffled (seed 1) before compiling.

The variants run interleaved, ``--repeats`` rounds; the fastest of each is printed, and the
ratios to ``index`` of the same run, in wall time and in the sweeping thread's CPU time
(``stats["kernel_cpu_s"]``: on a loaded machine the wall time includes waiting for a core).  Every variant's answers are checked equal to the first's
(matched by node id).  Usage:
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


VARIANTS = ("index", "forest", "renumbered", "recompiled-forest", "recompiled-random")


def per_element(c, variant: str):
    """One sweep over every node: (kernel seconds per element, set-up seconds, answers)."""
    from cascade import criticality

    el = np.arange(c.n_nodes).astype(c.index_dtype)
    saved = {k: getattr(criticality, k) for k in ("FOREST_ORDER", "RENUMBER", "RENUMBER_MIN_NODES",
                                                  "RENUMBER_MIN_SHARE")}
    try:
        criticality.FOREST_ORDER = variant == "forest"
        criticality.RENUMBER = variant == "renumbered"
        criticality.RENUMBER_MIN_NODES, criticality.RENUMBER_MIN_SHARE = 0, 0.0
        stats = {}
        out = criticality.core_sweep(c, el, np.full(len(el), -1, c.index_dtype), threads=1,
                                     stats=stats)
    finally:
        for k, v in saved.items():
            setattr(criticality, k, v)
    return stats["kernel_s"] / len(el), stats["setup_s"], stats["kernel_cpu_s"] / len(el), out


def main(argv=None) -> int:
    from cascade import InfrastructureSystem, compile_system
    from cascade.criticality import synthetic_lifelines

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args(argv)
    print("us per element (kernel only, one thread, fastest of the repeats; ratio to index; the "
          "same in the thread's CPU time) and set-up in ms", flush=True)
    for size in args.sizes:
        system = synthetic_lifelines(size, seed=0)
        c = compile_system(system)
        ids = np.asarray(c.node_ids)
        systems = {}
        for name in args.variants:
            if name.startswith("recompiled"):
                order = (forest_preorder(c) if name == "recompiled-forest"
                         else np.random.default_rng(1).permutation(c.n_nodes))
                nodes = system.nodes.set_index("id").loc[ids[order]].reset_index()
                systems[name] = compile_system(InfrastructureSystem.from_tables(
                    nodes, system.edges, system.dependencies, rules=system.rules))
            else:
                systems[name] = c
        best = {name: (np.inf, np.inf, np.inf) for name in args.variants}
        want = None
        for _ in range(args.repeats):
            for name in args.variants:
                cc = systems[name]
                each, setup, cpu, out = per_element(cc, name)
                best[name] = (min(best[name][0], each), min(best[name][1], setup),
                              min(best[name][2], cpu))
                pos = {v: i for i, v in enumerate(np.asarray(cc.node_ids))} if cc is not c else None
                back = np.array([pos[v] for v in ids]) if pos else np.arange(c.n_nodes)
                got = (out[0][back], out[1][back], out[2][back], out[3][back])
                if want is None:
                    want = got
                assert all(np.array_equal(a, b) for a, b in zip(want, got)), f"{name}: answers differ"
        base, base_cpu = best[args.variants[0]][0], best[args.variants[0]][2]
        cells = "  ".join(f"{name} {best[name][0] * 1e6:.2f} ({best[name][0] / base:.2f}x; CPU "
                          f"{best[name][2] * 1e6:.2f}, {best[name][2] / base_cpu:.2f}x; "
                          f"set-up {best[name][1] * 1e3:.0f})" for name in args.variants)
        print(f"{c.n_nodes:>9}  {cells}", flush=True)
        del system, c, systems
    return 0


if __name__ == "__main__":
    sys.exit(main())
