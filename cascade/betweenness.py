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
Pich, Int. J. Bifurc. Chaos 17, 2303, 2007): ``k`` searches instead of ``n``.  Each search
(:func:`cascade._btw.brandes`, compiled, no allocation per source) costs two passes over the
arcs of the source's connected component.
"""
from __future__ import annotations

import numpy as np

from .compiled import CompiledSystem


def sample_sources(n: int, k: int, seed: int) -> np.ndarray:
    """``min(k, n)`` distinct nodes of ``0..n-1`` drawn uniformly with ``seed``, ascending."""
    k = min(int(k), int(n))
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False)).astype(np.int64)


def betweenness(compiled: CompiledSystem, sources: np.ndarray | None = None,
                edges: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Node (and edge) betweenness of the undirected multigraph of every layer's edges.

    Parameters
    ----------
    compiled : CompiledSystem
    sources : ndarray of int, optional
        Node indices to search from: all (exact) when None, else a uniform sample (see
        :func:`sample_sources`) whose sums are scaled by ``n / len(sources)``.
    edges : bool
        Also return edge betweenness.

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
