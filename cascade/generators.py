"""Seeded synthetic systems: coupled Erdős–Rényi layers (Buldyrev et al., Nature 464, 1025, 2010)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .system import InfrastructureSystem


def er_edges(n: int, k: float, rng: np.random.Generator) -> np.ndarray:
    """Edges of an Erdős–Rényi graph G(n, M) with M = round(n k / 2) distinct edges.

    Returns
    -------
    ndarray of int64, shape (M, 2)
    """
    target = int(round(n * k / 2))
    edges = np.zeros((0, 2), np.int64)
    while len(edges) < target:
        draw = rng.integers(0, n, size=(2 * (target - len(edges)) + 16, 2))
        draw = draw[draw[:, 0] != draw[:, 1]]
        draw.sort(axis=1)
        edges = np.unique(np.vstack([edges, draw]), axis=0)
    return edges[rng.permutation(len(edges))[:target]]


def coupled_er(n: int, k: float = 4.0, seed: int = 0, coupling: float = 1.0,
               layers=("A", "B"), rule: str = "giant") -> InfrastructureSystem:
    """Two (or more) Erdős–Rényi layers of ``n`` nodes with mean degree ``k``.

    Node ``i`` of each layer depends on node ``i`` of the next one (cyclically), for a
    fraction ``coupling`` of the nodes (Parshani et al., PRL 105, 048701, 2010); with two
    layers and ``coupling=1`` that is the one-to-one mutual dependency of Buldyrev et al.
    Node ids are ``{layer}{i}``.

    Parameters
    ----------
    n : int
        Nodes per layer.
    k : float
        Mean degree.
    seed : int
    coupling : float
        Fraction of nodes with a dependency.
    layers : sequence of str
    rule : str
        Rule of every layer.
    """
    rng = np.random.default_rng(seed)
    node_frames, edge_frames, dep_frames = [], [], []
    idx = np.arange(n)
    for name in layers:
        ids = np.char.add(name, idx.astype(str)).astype(object)
        node_frames.append(pd.DataFrame({"id": ids, "layer": name, "demand": 1.0}))
        e = er_edges(n, k, rng)
        edge_frames.append(pd.DataFrame({"id": np.char.add(f"{name}e", np.arange(len(e)).astype(str)),
                                         "source": ids[e[:, 0]], "target": ids[e[:, 1]]}))
    coupled = idx[rng.random(n) < coupling]
    for a, b in zip(layers, list(layers[1:]) + [layers[0]]):
        if a == b:
            continue
        dep_frames.append(pd.DataFrame({"dependent": np.char.add(a, coupled.astype(str)),
                                        "supplier": np.char.add(b, coupled.astype(str))}))
    deps = pd.concat(dep_frames) if dep_frames else pd.DataFrame(columns=["dependent", "supplier"])
    if len(layers) == 2:
        deps = deps.drop_duplicates()
    return InfrastructureSystem.from_tables(
        pd.concat(node_frames, ignore_index=True), pd.concat(edge_frames, ignore_index=True),
        deps.reset_index(drop=True), name=f"er{len(layers)}x{n}-k{k:g}-s{seed}",
        rules={name: rule for name in layers})


def percolation_theory(p: float, k: float) -> float:
    """Surviving fraction of each of two fully coupled ER layers (Buldyrev et al. 2010).

    The largest root of ``P = p (1 - exp(-k P))**2``, iterated from ``P = 1``.
    """
    x = 1.0
    for _ in range(100_000):
        nxt = p * (1.0 - np.exp(-k * x)) ** 2
        if abs(nxt - x) < 1e-13:
            break
        x = nxt
    return float(x)
