"""Annual risk: expected annual service loss, loss exceedance and who contributes, from a set
of hazard scenarios that each carry their annual rate.

Model
-----
Each scenario s is an event type occurring as a Poisson process of rate λ_s per year
(``[scenario] annual_rate``, or 1 / ``return_period``); its Monte Carlo ensemble
(:func:`cascade.ensemble.run_ensemble`, K_s samples) stands for the distribution of the loss
when it occurs.  With loss ℓ_{s,k} (a layer's lost fraction of its intact service, or the
score below) of sample k:

* **expected annual loss** EAL = Σ_s λ_s · mean_k ℓ_{s,k} per layer, as a fraction of the
  layer's service per year and in the layer's own unit (the fraction times the layer's
  intact demand, or its number of nodes where it has no demand).  Amounts of different
  layers are never added: the unit-free **score** of a sample is Σ_l w_l ℓ_l / Σ_l w_l,
  the weighted mean of the layers' lost fractions (weights ``--weight LAYER=W``, default 1);
* **loss exceedance**: ν(x) = Σ_s λ_s · #{k : score_{s,k} ≥ x} / K_s events per year with a
  score of at least x; the return period is 1/ν and the chance of at least one such event
  in a year 1 − exp(−ν);
* **contribution of an asset**: each sample's loss is split among the elements the hazard
  failed directly in it (for rainfall: at the flood-cascade fixpoint), and
  c_e = Σ_s λ_s · (1/K_s) Σ_k share_{e,s,k}; the contributions add up to the EAL exactly.
  ``attribution="equal"`` (default) gives every direct failure of a sample the same share:
  cheap, but blind to which of the assets that failed together did the harm.
  ``"marginal"`` splits each layer's loss in proportion to what sparing each asset alone
  avoids in that sample (the hazard and cascade rerun without it: for rainfall the
  fixpoint, so a flooded substation whose pumps would have kept the water down gets the
  water's damage), equal shares where sparing none helps on its own; it costs one more
  sample and cascade per direct failure of every sample with a loss (cached by failed set
  for hazards without feedback).  Neither is a Shapley value; marginal shares over-weight
  assets whose loss others would also cause only if they are the sole cause.

The scenarios are the user's discretisation of the hazard: for events of increasing return
periods T_1 < T_2 < ... the rate of event i should be that of its bin (for example
1/T_i − 1/T_{i+1}), not 1/T_i, or the EAL counts the rare events several times.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .compiled import compile_system
from .ensemble import _service_lost, run_ensemble
from .errors import InputError
from .hazards import Scenario
from .system import InfrastructureSystem

CURVE_ROWS = 12


@dataclass
class RiskResult:
    """The outcome of :func:`annual_risk` (see the module docstring for the definitions).

    Attributes
    ----------
    layers : list of str
    units : list of str
        Per layer, the unit of its amounts.
    totals : ndarray, shape (L,)
        Intact demand per layer (number of nodes for a layer without demand).
    weights : ndarray, shape (L,)
        Score weights, normalised to sum 1.
    eal : ndarray, shape (L,)
        Expected annual lost fraction per layer (per year).
    eal_score : float
        Expected annual score (per year).
    scenarios : list of dict
        Per scenario: name, file, hazard type, annual rate, samples, seed, executor, mean lost
        fraction per layer and mean score.
    curve : pandas.DataFrame
        ``loss`` (score), ``rate`` (events per year with a score >= loss), ``return_period``
        (years), ``probability`` (of at least one in a year); one row per distinct positive
        score, largest loss first.
    assets : pandas.DataFrame
        ``id``, ``element`` (node / edge), ``layer``, ``contribution`` (score per year),
        ``share`` (of ``eal_score``), ``outage_rate`` (nodes: expected times per year it is
        out of service, directly or through the cascade; empty for edges), and
        ``contribution_<layer>`` (lost fraction of that layer per year); elements with a
        positive contribution, largest first.
    """

    system: str
    layers: list
    units: list
    totals: np.ndarray
    weights: np.ndarray
    eal: np.ndarray
    eal_score: float
    scenarios: list
    curve: pd.DataFrame
    assets: pd.DataFrame
    total_rate: float = 0.0
    executor: str = ""
    attribution: str = "equal"
    extra: dict = field(default_factory=dict)

    def curve_rows(self, rows: int = CURVE_ROWS) -> pd.DataFrame:
        """At most ``rows`` points of the curve, spread evenly over its distinct losses."""
        if len(self.curve) <= rows:
            return self.curve
        pick = np.unique(np.linspace(0, len(self.curve) - 1, rows).round().astype(int))
        return self.curve.iloc[pick]

    def to_dict(self, top: int | None = None) -> dict:
        assets = self.assets if top is None else self.assets.head(top)
        return {
            "system": self.system,
            "model": "EAL = sum of annual_rate x mean loss; score = weighted mean of layers' lost "
                     "fractions; contribution = share of each sample's loss among its direct failures",
            "attribution": self.attribution,
            "total_annual_rate": self.total_rate,
            "layers": {name: {"unit": unit, "intact": float(total), "weight": float(w),
                              "eal_fraction": float(f), "eal_amount": float(f * total)}
                       for name, unit, total, w, f in zip(self.layers, self.units, self.totals,
                                                          self.weights, self.eal)},
            "eal_score": self.eal_score,
            "scenarios": self.scenarios,
            "exceedance": [{"loss": r.loss, "rate": r.rate, "return_period": r.return_period,
                            "probability": r.probability} for r in self.curve.itertuples(index=False)],
            "assets": [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
                       for row in assets.to_dict(orient="records")],
        }


def sample_shares(compiled, scenario, ws, i, seed, nodes, edges, loss_k, baseline_service, totals,
                  how, immune, fragility_scale, cache) -> np.ndarray:
    """Sample ``i``'s loss (L+1,) split among its direct failures, shape (k, L+1): equally,
    or (``marginal``) in proportion, per layer, to the loss each one alone avoids when it
    is spared (the hazard and cascade rerun without it; equal shares where none does).

    Called by :func:`cascade.ensemble.run_batch` with ``attribute``; ``ws`` is the batch's
    workspace (free once the sample's loss is counted), ``cache`` a dict kept per batch.
    """
    k = len(nodes) + len(edges)
    equal = np.broadcast_to(loss_k / k, (k, len(loss_k)))
    if how != "marginal" or k == 1 or not (loss_k > 0).any():
        return equal
    feedback = getattr(scenario.hazard, "feedback", False)
    key = None if feedback else (nodes.tobytes(), edges.tobytes())
    avoided = cache.get(key) if key is not None else None
    if avoided is None:
        avoided = np.zeros((k, len(loss_k)))
        for j in range(k):
            if feedback:
                name = compiled.node_ids[nodes[j]] if j < len(nodes) else compiled.edge_ids[edges[j - len(nodes)]]
                scenario.run(compiled, ws, i, seed=seed, immune=tuple(immune) + (str(name),),
                             fragility_scale=fragility_scale)
            elif j < len(nodes):
                ws.run(np.delete(nodes, j), edges)
            else:
                ws.run(nodes, np.delete(edges, j - len(nodes)))
            after = baseline_service - _service_lost(compiled, np.flatnonzero(ws.working == 0), totals)
            avoided[j] = np.maximum(loss_k - after, 0.0)
        if key is not None:
            cache[key] = avoided
    total = avoided.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, loss_k * avoided / np.where(total > 0, total, 1.0), equal)
    return out


def flow_shares(compiled, scenario, samples: int, seed: int, loss: np.ndarray, how: str,
                threads: int | None = None, block: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Asset shares of an ensemble on a system with flow layers, shapes (n, L) and (m, L).

    The ensemble (:func:`cascade.ensemble.run_ensemble`) gives each sample's loss per layer,
    ``loss`` (samples, L), counted on served amounts; this pass draws every sample's direct
    failures again (the same keyed draws, so the same sets) and splits each sample's loss
    among them as :func:`sample_shares` does: equally, or (``marginal``) in proportion to the
    loss each one alone avoids when it is spared (one more flow cascade per direct failure of
    every sample with a loss, on :func:`cascade.flowcore.flow_engine`; cached by failed set).
    It runs on local threads whatever executor ran the ensemble.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .ensemble import _default_threads, _flow_service, _totals
    from .flowcore import flow_engine

    L = loss.shape[1]
    totals = _totals(compiled)
    intact = flow_engine(compiled).run()
    baseline = _flow_service(compiled, intact[0], intact[4], totals)[:L]

    def part(span):
        a, b = span
        engine = flow_engine(compiled) if how == "marginal" else None
        node_share = np.zeros((compiled.n_nodes, L))
        edge_share = np.zeros((compiled.n_edges, L))
        cache: dict = {}
        for i, (nodes, edges) in zip(range(a, b), scenario.sample_block(compiled, a, b, seed=seed)):
            nodes = np.asarray(nodes, np.int64)
            edges = np.asarray(edges, np.int64)
            k = len(nodes) + len(edges)
            if not k:
                continue
            loss_k = loss[i]
            out = np.broadcast_to(loss_k / k, (k, L))
            if how == "marginal" and k > 1 and (loss_k > 0).any():
                key = (nodes.tobytes(), edges.tobytes())
                avoided = cache.get(key)
                if avoided is None:
                    avoided = np.zeros((k, L))
                    for j in range(k):
                        if j < len(nodes):
                            run = engine.run(np.delete(nodes, j), edges, table=False)
                        else:
                            run = engine.run(nodes, np.delete(edges, j - len(nodes)), table=False)
                        after = baseline - _flow_service(compiled, run[0], run[4], totals)[:L]
                        avoided[j] = np.maximum(loss_k - after, 0.0)
                    cache[key] = avoided
                total = avoided.sum(axis=0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    out = np.where(total > 0, loss_k * avoided / np.where(total > 0, total, 1.0), out)
            np.add.at(node_share, nodes, out[:len(nodes)])
            np.add.at(edge_share, edges, out[len(nodes):])
        return node_share, edge_share

    spans = [(a, min(a + block, samples)) for a in range(0, samples, block)]
    threads = max(1, min(threads or _default_threads(), len(spans))) if how == "marginal" else 1
    if threads == 1:
        parts = [part(span) for span in spans]
    else:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(part, spans))
    node_share = np.zeros((compiled.n_nodes, L))
    edge_share = np.zeros((compiled.n_edges, L))
    for ns, es in parts:          # in span order: the same sums for any thread count
        node_share += ns
        edge_share += es
    return node_share, edge_share


def layer_weights(layers: Sequence[str], weights: Mapping[str, float] | None) -> np.ndarray:
    """Weights per layer (default 1), normalised to sum 1; unknown layers are errors."""
    w = np.ones(len(layers))
    for name, value in (weights or {}).items():
        if name not in layers:
            raise InputError(f"--weight: no layer '{name}' in the system (layers: {', '.join(layers)})")
        if not (np.isfinite(value) and value >= 0):
            raise InputError(f"--weight {name}: must be a number >= 0, not {value}")
        w[list(layers).index(name)] = value
    if w.sum() <= 0:
        raise InputError("--weight: at least one layer needs a positive weight")
    return w / w.sum()


def annual_risk(system: InfrastructureSystem, scenarios: Sequence[Scenario], *,
                samples: int | None = None, seed: int | None = None,
                weights: Mapping[str, float] | None = None, units: Mapping[str, str] | None = None,
                threads: int | None = None, scheduler: str | None = None, workers: int | None = None,
                progress: bool = False, attribution: str = "equal") -> RiskResult:
    """Expected annual loss, loss exceedance and asset contributions of ``scenarios``.

    Parameters
    ----------
    system : InfrastructureSystem
    scenarios : sequence of Scenario
        Each with ``annual_rate`` set (``[scenario] annual_rate`` or ``return_period``).
    samples : int, optional
        Samples per scenario (default: each file's ``samples``, else 1000).
    seed : int, optional
        Overrides every scenario's seed.
    weights : dict of str to float, optional
        Score weight per layer (default 1 each).
    units : dict of str to str, optional
        Unit label per layer (default ``"demand units"``, or ``"nodes"`` for a layer
        without demand).
    threads, scheduler, workers
        The executor, as for :func:`cascade.ensemble.run_ensemble`; ``workers`` starts one
        local Dask cluster for all scenarios.
    attribution : {"equal", "marginal"}
        How a sample's loss is split among its direct failures (module docstring).

    Returns
    -------
    RiskResult
    """
    if not scenarios:
        raise InputError("give at least one scenario file")
    if attribution not in ("equal", "marginal"):
        raise InputError(f"attribution must be equal or marginal, not {attribution!r}")
    for s in scenarios:
        if s.annual_rate is None:
            raise InputError("cascade risk needs the scenario's annual rate: [scenario] annual_rate "
                             "(events per year) or return_period (years)", str(s.path or s.name))
    compiled = compile_system(system)
    layers = list(compiled.layer_names)
    L = len(layers)
    for name in (units or {}):
        if name not in layers:
            raise InputError(f"--unit: no layer '{name}' in the system (layers: {', '.join(layers)})")
    # system.toml's layer weights and units are the defaults; the options override them.
    w = layer_weights(layers, {**{name: system.layer_weight(name) for name in layers}, **(weights or {})})
    demand = np.bincount(compiled.node_layer, weights=compiled.demand, minlength=L)
    count = np.bincount(compiled.node_layer, minlength=L).astype(float)
    totals = np.where(demand > 0, demand, count)
    unit_names = [(units or {}).get(name, system.layer_unit(name) or "demand units") if demand[k] > 0
                  else (units or {}).get(name, "nodes") for k, name in enumerate(layers)]

    cluster = None
    if workers is not None:
        from .ensemble import _dask, _local_cluster

        cluster = _local_cluster(_dask(), workers)
        scheduler = cluster.scheduler_address
    try:
        eal = np.zeros(L)
        node_c = np.zeros((compiled.n_nodes, L))
        edge_c = np.zeros((compiled.n_edges, L))
        outage = np.zeros(compiled.n_nodes)
        points, point_w = [], []
        described = []
        executor = ""
        for s in scenarios:
            n = samples or s.samples or 1000
            # Flow layers: the ensemble counts served amounts; the shares come from a second,
            # local pass over the same samples (flow_shares).
            flow = compiled.has_flow_layers
            res = run_ensemble(system, s, n, seed=seed, threads=threads, scheduler=scheduler,
                               compiled=compiled, progress=progress,
                               attribute=False if flow else attribution)
            executor = res.executor if cluster is None else f"dask (local cluster, {workers} workers)"
            loss = res.loss[:, :L]
            rate = float(s.annual_rate)
            eal += rate * loss.mean(axis=0)
            if flow:
                node_share, edge_share = flow_shares(compiled, s, n, res.seed, loss, attribution,
                                                     threads=threads)
            else:
                node_share, edge_share = res.node_share[:, :L], res.edge_share[:, :L]
            node_c += rate * node_share / n
            edge_c += rate * edge_share / n
            outage += rate * res.failed / n
            score = loss @ w
            points.append(score)
            point_w.append(np.full(n, rate / n))
            described.append({"name": s.name, "file": str(s.path) if s.path else None,
                              "hazard": s.hazard.type, "annual_rate": rate,
                              "return_period": 1.0 / rate, "samples": n, "seed": res.seed,
                              "mean_loss": {name: float(v) for name, v in zip(layers, loss.mean(axis=0))},
                              "mean_score": float(score.mean())})
    finally:
        if cluster is not None:
            from .ensemble import close_local_cluster

            close_local_cluster(cluster)

    score = np.concatenate(points)
    sw = np.concatenate(point_w)
    keep = score > 0
    values, inverse = np.unique(score[keep], return_inverse=True)
    mass = np.bincount(inverse, weights=sw[keep], minlength=len(values))
    rate_ge = np.cumsum(mass[::-1])[::-1]              # events/yr with score >= value
    curve = pd.DataFrame({"loss": values[::-1], "rate": rate_ge[::-1]})
    with np.errstate(divide="ignore"):
        curve["return_period"] = 1.0 / curve["rate"]
    curve["probability"] = -np.expm1(-curve["rate"])

    nc, ec = node_c @ w, edge_c @ w
    eal_score = float(eal @ w)
    layer_of = np.asarray(layers, dtype=object)
    src_layer = layer_of[compiled.node_layer[compiled.edge_src]] if compiled.n_edges else np.zeros(0, object)
    frame = pd.DataFrame({
        "id": np.concatenate([compiled.node_ids, compiled.edge_ids]).astype(str),
        "element": ["node"] * compiled.n_nodes + ["edge"] * compiled.n_edges,
        "layer": np.concatenate([layer_of[compiled.node_layer], src_layer]),
        "contribution": np.concatenate([nc, ec]),
        "outage_rate": np.concatenate([outage, np.full(compiled.n_edges, np.nan)]),
    })
    frame["share"] = frame["contribution"] / eal_score if eal_score > 0 else 0.0
    per_layer = np.vstack([node_c, edge_c])
    for k, name in enumerate(layers):
        frame[f"contribution_{name}"] = per_layer[:, k]
    frame = frame[frame["contribution"] > 0]
    order = np.lexsort((np.arange(len(frame)), -frame["contribution"].to_numpy()))
    frame = frame.iloc[order].reset_index(drop=True)
    frame = frame[["id", "element", "layer", "contribution", "share", "outage_rate"]
                  + [f"contribution_{name}" for name in layers]]
    return RiskResult(compiled.name, layers, unit_names, totals, w, eal, eal_score, described,
                      curve, frame, total_rate=float(sum(s.annual_rate for s in scenarios)),
                      executor=executor, attribution=attribution)


def plot_curve(result: RiskResult, path) -> None:
    """The loss-exceedance curve (annual rate vs score, log rate axis) as PNG, SVG or PDF,
    written atomically."""
    import io
    from pathlib import Path

    from .io import write_atomic
    from .report import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    c = result.curve
    if len(c):
        # ν(x) = rate of the smallest listed loss >= x: a step down after each listed loss.
        x = np.concatenate([[0.0], c["loss"].to_numpy()[::-1]]) * 100
        y = np.concatenate([[c["rate"].iloc[-1]], c["rate"].to_numpy()[::-1]])
        ax.step(x, y, where="pre", color="#1f77b4")
        ax.plot(c["loss"] * 100, c["rate"], "o", ms=3, color="#1f77b4")
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no sample lost any service", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("loss score (weighted mean of the layers' lost service, %)")
    ax.set_ylabel("annual exceedance rate (events / year)")
    ax.set_title(f"{result.system}: loss exceedance, EAL {100 * result.eal_score:.3g} % / year")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lower().lstrip("."), dpi=120)
    plt.close(fig)
    write_atomic(path, buf.getvalue())
