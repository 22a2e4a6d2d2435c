"""cascade: cascading failures in coupled city lifelines.

Data flows one way: files -> :class:`InfrastructureSystem` (pandas tables) ->
:func:`compile_system` (the one name-to-index boundary) -> kernels in ``cascade._core`` ->
results mapped back to names.
"""
from .compiled import CompiledSystem, Workspace, compile_system
from .errors import InputError
from .io import read_system, write_system
from .simulation import CascadeResult, layer_service, simulate
from .system import InfrastructureSystem
from .criticality import greedy_worst_set, sweep
from .recovery import RecoveryResult, recover
from .hazards import Scenario, load_scenario
from .ensemble import EnsembleResult, run_ensemble

__version__ = "0.1.0"

__all__ = [
    "InfrastructureSystem", "CompiledSystem", "Workspace", "CascadeResult", "InputError",
    "compile_system", "read_system", "write_system", "simulate", "layer_service",
    "sweep", "greedy_worst_set", "recover", "RecoveryResult", "Scenario", "load_scenario",
    "run_ensemble", "EnsembleResult",
]
