"""Units of layer amounts and the unit-free score that ranks across layers.

Layers measure demand in their own units (MW, L/s, people: ``[layers.NAME] unit`` in
``system.toml``), so no result adds raw amounts of different layers.  Where a result ranks
or sums across layers it uses the **score**: the weighted sum over layers of the lost
fraction of each layer's demand,

    score = sum over layers l of  weight_l * lost_demand_l / demand_l,

where ``demand_l`` is the layer's total demand and ``weight_l`` its weight (``[layers.NAME]
weight``, default 1).  A layer without demand counts the lost fraction of its nodes instead
(the service of docs/format.md).  With the default weights, a score of 1.0 is one whole layer's
demand lost; the largest possible score is the sum of the weights.
"""
from __future__ import annotations

import numpy as np

from .compiled import CompiledSystem
from .system import InfrastructureSystem

NO_UNIT = "(no unit)"


def unit_label(unit: str | None) -> str:
    """A unit for display: the unit, or ``(no unit)`` when the layer sets none."""
    return unit if unit else NO_UNIT


def per_year(unit: str | None) -> str:
    """A layer's unit per year, for expected annual amounts (rate x amount lost): ``MW/yr``,
    ``people/yr``; a unit that is itself a ratio is bracketed, ``(m3/h)/yr``, never
    ``m3/h/yr`` (which reads as m3 per hour per year, or as m3 per (h/yr))."""
    label = unit_label(unit)
    if unit and "/" in unit:
        label = f"({unit})"
    return f"{label}/yr"


def amount(value: float, unit: str | None, digits: int = 0) -> str:
    """``1,234 MW``; ``1,234 (no unit)`` when unset."""
    return f"{value:,.{digits}f} {unit_label(unit)}"


def layer_weights(system: InfrastructureSystem, layer_names) -> np.ndarray:
    """Weights of ``layer_names`` (in that order), default 1."""
    return np.array([system.layer_weight(name) for name in layer_names], np.float64)


def layer_totals(compiled: CompiledSystem) -> tuple[np.ndarray, np.ndarray]:
    """Per layer (compiled order): total demand and number of nodes."""
    L = len(compiled.layer_names)
    demand = np.bincount(compiled.node_layer, weights=compiled.demand, minlength=L)[:L]
    nodes = np.bincount(compiled.node_layer, minlength=L)[:L].astype(np.float64)
    return demand.astype(np.float64), nodes


def lost_fractions(compiled: CompiledSystem, layer_demand_lost, layer_nodes_lost,
                   totals: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Lost fraction of each layer's demand (of its nodes where it has no demand), shape (k, L)
    (``totals``: :func:`layer_totals` of ``compiled`` when already at hand)."""
    demand, nodes = totals if totals is not None else layer_totals(compiled)
    dl = np.asarray(layer_demand_lost, np.float64).reshape(-1, len(demand))
    nl = np.asarray(layer_nodes_lost, np.float64).reshape(-1, len(demand))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(demand > 0, dl / np.where(demand > 0, demand, 1.0),
                       nl / np.where(nodes > 0, nodes, 1.0))
    return out


def score(system: InfrastructureSystem, compiled: CompiledSystem, layer_demand_lost,
          layer_nodes_lost, totals: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The unit-free score of each row: weighted sum of the layers' lost fractions
    (``totals``: :func:`layer_totals` of ``compiled`` when already at hand)."""
    fractions = lost_fractions(compiled, layer_demand_lost, layer_nodes_lost, totals)
    return fractions @ layer_weights(system, compiled.layer_names)


def weighted_service_loss(system: InfrastructureSystem, layer_names, losses) -> np.ndarray:
    """The score of per-layer service losses (fractions, shape (..., L)): sum of weight * loss."""
    return np.asarray(losses, np.float64) @ layer_weights(system, layer_names)


def node_weights(system: InfrastructureSystem, compiled: CompiledSystem) -> np.ndarray:
    """Each node's share of the score, shape (n,): ``weight_l * demand_i / demand_l`` in a layer
    with demand, ``weight_l / nodes_l`` in one without.  The score of a set of lost nodes is
    the sum of their shares; every node working scores the sum of the weights."""
    demand, nodes = layer_totals(compiled)
    w = layer_weights(system, compiled.layer_names)
    layer = compiled.node_layer
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(demand[layer] > 0, compiled.demand / np.where(demand > 0, demand, 1.0)[layer],
                         1.0 / np.where(nodes > 0, nodes, 1.0)[layer])
    return w[layer] * share
