"""Write ``pyincore_damage_m62.csv``: a damage table in the layout pyincore's damage analyses
write (``guid,LS_0,LS_1,LS_2,DS_0,DS_1,DS_2,DS_3,haz_expose``), for the demo town.

Not pyincore output: the limit-state probabilities are Hazus fragilities (the classes of
``earthquake_m62.toml``) at each facility's median PGA or SA(1 s) from that scenario's
point source, so the table carries the same information a pyincore run would hand over.
LS_k = P(damage state > k), DS_0 = 1 - LS_0, DS_k = LS_(k-1) - LS_k, DS_3 = LS_2.

Run from the repository root: ``python scenarios/make_pyincore_table.py``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import ndtr

from cascade import compile_system, read_system
from cascade.hazards import DAMAGE_STATES, HAZUS_CLASSES, load_scenario

HERE = Path(__file__).resolve().parent


def main():
    system = read_system(HERE.parent / "networks" / "demo_town")
    compiled = compile_system(system)
    scenario = load_scenario(HERE / "earthquake_m62.toml")
    prep = scenario.prepare(system, compiled)
    hz, el = scenario.hazard, prep["elements"]
    from cascade.hazards import _lookup

    entries = _lookup(hz.fragility, el.node_layer, el.node_kind)
    sn = prep["sn"]
    # The median ground motion of each shaken node, in its class's measure.
    ln_gm = prep["sn_z0"] * prep["sn_beta"] + np.log(prep["median"][sn])
    lines = ["guid,LS_0,LS_1,LS_2,DS_0,DS_1,DS_2,DS_3,haz_expose"]
    for k, i in enumerate(sn):
        entry = entries[i]
        states = HAZUS_CLASSES[entry] if isinstance(entry, str) else [entry] * len(DAMAGE_STATES)
        ls = [float(ndtr((ln_gm[k] - np.log(m)) / b)) for m, b in states[:3]]
        ds = [1 - ls[0], ls[0] - ls[1], ls[1] - ls[2], ls[2]]
        lines.append(f"{compiled.node_ids[i]}," + ",".join(f"{v:.6f}" for v in ls + ds) + ",yes")
    (HERE / "pyincore_damage_m62.csv").write_text("\n".join(lines) + "\n")
    print(f"wrote {len(sn)} rows")


if __name__ == "__main__":
    main()
