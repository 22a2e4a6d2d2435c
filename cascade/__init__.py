"""cascade: cascading failures in coupled city lifelines.

Data flows one way: files -> :class:`InfrastructureSystem` (pandas tables) ->
:func:`compile_system` (the one name-to-index boundary) -> kernels in ``cascade._core`` ->
results mapped back to names.

The names below load on first use (PEP 562), so ``import cascade`` and ``cascade --help`` do
not pay for pandas, numpy and the kernels until something needs them.
"""
from __future__ import annotations

import importlib
import importlib.util

__version__ = "0.1.0"

# name -> the module that defines it
_EXPORTS = {
    "CompiledSystem": "compiled", "Workspace": "compiled", "compile_system": "compiled",
    "InputError": "errors",
    "read_system": "io", "write_system": "io",
    "CascadeResult": "simulation", "layer_service": "simulation", "simulate": "simulation",
    "InfrastructureSystem": "system",
    "greedy_worst_set": "criticality", "sweep": "criticality",
    "RecoveryResult": "recovery", "recover": "recovery",
    "Scenario": "hazards", "load_scenario": "hazards",
    "EnsembleResult": "ensemble", "run_ensemble": "ensemble",
}

__all__ = [
    "InfrastructureSystem", "CompiledSystem", "Workspace", "CascadeResult", "InputError",
    "compile_system", "read_system", "write_system", "simulate", "layer_service",
    "sweep", "greedy_worst_set", "recover", "RecoveryResult", "Scenario", "load_scenario",
    "run_ensemble", "EnsembleResult",
]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        # `import cascade; cascade.criticality.sweep(...)`: a submodule loads on first use too
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f".{name}", __name__)
        raise AttributeError(f"module 'cascade' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value   # next time without this hook
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
