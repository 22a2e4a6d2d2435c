"""Betweenness of a compiled system's nodes and edges (all edges undirected), exact or
estimated from a seeded sample of sources, on the system's own adjacency arrays.

Brandes' algorithm (J. Math. Sociol. 25, 163, 2001) from each source ``s``: a breadth-first
search counts the shortest paths ``sigma`` to every node, level by level, then the
dependencies ``delta_s(v) = sum over arcs v->w of the shortest-path DAG of
sigma(v) / sigma(w) * (1 + delta_s(w))`` are accumulated from the deepest level back.  A
node's betweenness is half the sum of ``delta_s(v)`` over all sources ``s != v`` (each
unordered pair once, as igraph's ``Graph.betweenness(directed=False)``); an edge's is half the
sum of the terms on its two arcs (igraph's ``edge_betweenness``).  Parallel edges are separate
shortest paths and self-loops are on none, as in igraph's multigraphs.

With all nodes as sources the result is the exact betweenness (tested against igraph).  With a
uniform sample of ``k`` sources, ``n / k`` times the sum is an unbiased estimate (Brandes and
Pich, Int. J. Bifurc. Chaos 17, 2303, 2007): ``k`` searches instead of ``n``.
:func:`sample_sources` stratifies the sample by layer (edges never join two layers), each
source weighted by its layer's nodes per source drawn there.  Each search
(:func:`cascade._btw.brandes`, compiled, no allocation per source) costs two passes over the
arcs of the source's connected component.
"""
from __future__ import annotations

import numpy as np

from .compiled import CompiledSystem

PARTS = 2   # the sources are searched in this many parts (threads), whatever the thread count


def sample_sources(compiled: CompiledSystem, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """About ``k`` distinct source nodes drawn with ``seed``, stratified by layer, and the
    weight of each (its layer's nodes per source drawn there).

    Edges join nodes of one layer, so a node's shortest paths start in its own layer: each
    layer with nodes gets ``max(1, round(k * n_layer / n))`` of its nodes (all of them when it
    has fewer), uniformly, and ``weight * dependency`` summed over a layer's sources is an
    unbiased estimate of the sum over all of that layer's nodes (a layer never goes unsampled,
    as it can in a uniform draw over the whole system).
    """
    c = compiled
    rng = np.random.default_rng(seed)
    ptr = np.asarray(c.layer_ptr, np.int64)
    nodes = np.asarray(c.layer_nodes, np.int64)
    n = max(c.n_nodes, 1)
    src, weight = [], []
    for lo, hi in zip(ptr[:-1], ptr[1:]):
        size = int(hi - lo)
        if size == 0:
            continue
        take = min(size, max(1, int(round(k * size / n))))
        src.append(nodes[lo:hi][rng.choice(size, size=take, replace=False)])
        weight.append(np.full(take, size / take))
    if not src:
        return np.zeros(0, np.int64), np.zeros(0)
    src, weight = np.concatenate(src), np.concatenate(weight)
    order = np.argsort(src, kind="stable")
    return src[order], weight[order]


def betweenness(compiled: CompiledSystem, sources: np.ndarray | None = None,
                weights: np.ndarray | None = None, edges: bool = False,
                threads: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """Node (and edge) betweenness of the undirected multigraph of every layer's edges.

    Parameters
    ----------
    compiled : CompiledSystem
    sources : ndarray of int, optional
        Node indices to search from: all (exact) when None, else a sample (see
        :func:`sample_sources`).
    weights : ndarray of float, optional
        Each source's weight (default: ``n / len(sources)`` for every one: a uniform sample).
    edges : bool
        Also return edge betweenness.
    threads : int
        The sources are cut in ``PARTS`` fixed parts searched on up to ``threads`` threads
        (the search releases the GIL); the parts' sums are added in order, so the answer does
        not depend on ``threads``.

    Returns
    -------
    node_btw : ndarray of float64, shape (n,)
    edge_btw : ndarray of float64, shape (m,), or None
    """
    c = compiled
    n, m = c.n_nodes, c.n_edges
    node_b = np.zeros(n)
    edge_b = np.zeros(m) if edges else None
    if n == 0:
        return node_b, edge_b
    src = np.arange(n, dtype=np.int64) if sources is None else \
        np.ascontiguousarray(sources, dtype=np.int64)
    if np.any((src < 0) | (src >= n)):    # the kernel runs without bounds checks
        raise ValueError("betweenness: source index out of range")
    weight = np.full(len(src), n / len(src) if len(src) else 0.0) if weights is None else \
        np.ascontiguousarray(weights, dtype=np.float64)
    if len(weight) != len(src):
        raise ValueError("betweenness: one weight per source")
    from . import _btw

    parts = [p for p in np.array_split(np.arange(len(src)), PARTS) if len(p)]

    def part(p):
        node_sum, edge_sum = np.zeros(n), np.zeros(m if edges else 0)
        _btw.brandes(c.adj_ptr, c.adj_nbr, c.adj_edge, src[p], weight[p], node_sum, edge_sum,
                     bool(edges))
        return node_sum, edge_sum

    if threads > 1 and len(parts) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(threads, len(parts))) as pool:
            sums = list(pool.map(part, parts))
    else:
        sums = [part(p) for p in parts]
    for node_sum, edge_sum in sums:
        node_b += node_sum
        if edges:
            edge_b += edge_sum
    node_b *= 0.5
    if edges:
        edge_b *= 0.5
    return node_b, edge_b
    src = np.arange(n, dtype=np.int64) if sources is None else \
        np.ascontiguousarray(sources, dtype=np.int64)
    if np.any((src < 0) | (src >= n)):    # the kernel runs without bounds checks
        raise ValueError("betweenness: source index out of range")
    from . import _btw

    arc_edge = np.asarray(c.adj_edge)
    edge_sum = np.zeros(m if edges else 0)
    _btw.brandes(c.adj_ptr, c.adj_nbr, arc_edge, src, node_b, edge_sum, bool(edges))
    if edges:
        edge_b = edge_sum
    scale = 0.5 * (n / len(src) if len(src) else 0.0)
    node_b *= scale
    if edges:
        edge_b *= scale
    return node_b, edge_b
