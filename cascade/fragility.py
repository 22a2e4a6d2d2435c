"""Hazus lifeline fragility classes beyond electric power, with the measure each one uses.

P(damage state ≥ ds | IM) = Φ(ln(IM / median) / β) for the four Hazus damage states
slight, moderate, extensive, complete; a class maps to four (median, β) pairs and a ground
motion measure (``PGA`` or ``SA1`` = 5 %-damped spectral acceleration at 1.0 s, both in g).

Transcribed here
----------------
* Highway bridges HWB1-HWB28: FEMA (2022), Hazus Earthquake Model Technical Manual,
  Hazus 5.1, chapter 7 (transportation systems), the table of bridge fragility medians for
  ground shaking (Sa(1.0 s) in g, β = 0.6 for every class and state), taken from NHERI
  SimCenter's machine-readable transcription of that edition (DamageAndLossModelLibrary,
  ``seismic/transportation_network/portfolio/Hazus v5.1/fragility.csv``, classes
  HWB.GS.1-28).  The printed table number could not be checked from here.  These are the
  medians *before* Hazus's skew and 3-D modification factors (K_skew, K_3D) and the
  short-period shape factor for the slight state: exact for straight bridges whose
  3-D factor is 1, and a simplification otherwise.

Not transcribed (values not found in a source that could be checked from here)
------------------------------------------------------------------------------
Hazus chapter 8 tables for potable water pumping plants (PWP), treatment plants (PWT),
storage tanks (PST), wells (PWE), waste-water lift stations (WWL), natural gas compressor
and regulator stations (NGC/NGR) and communication central offices (CCO).  Scenario files
give such kinds ``{median = g, beta = β}`` themselves until the tables are transcribed.
"""
from __future__ import annotations

#: Hazus 5.1 highway bridge classes: (median Sa(1.0 s) in g, β) for slight, moderate,
#: extensive, complete.  Descriptions in BRIDGE_DESCRIPTIONS.
BRIDGE_CLASSES: dict[str, tuple[tuple[float, float], ...]] = {
    "HWB1": ((0.40, 0.6), (0.50, 0.6), (0.70, 0.6), (0.90, 0.6)),
    "HWB2": ((0.60, 0.6), (0.90, 0.6), (1.10, 0.6), (1.70, 0.6)),
    "HWB3": ((0.80, 0.6), (1.00, 0.6), (1.20, 0.6), (1.70, 0.6)),
    "HWB4": ((0.80, 0.6), (1.00, 0.6), (1.20, 0.6), (1.70, 0.6)),
    "HWB5": ((0.25, 0.6), (0.35, 0.6), (0.45, 0.6), (0.70, 0.6)),
    "HWB6": ((0.30, 0.6), (0.50, 0.6), (0.60, 0.6), (0.90, 0.6)),
    "HWB7": ((0.50, 0.6), (0.80, 0.6), (1.10, 0.6), (1.70, 0.6)),
    "HWB8": ((0.35, 0.6), (0.45, 0.6), (0.55, 0.6), (0.80, 0.6)),
    "HWB9": ((0.60, 0.6), (0.90, 0.6), (1.30, 0.6), (1.60, 0.6)),
    "HWB10": ((0.60, 0.6), (0.90, 0.6), (1.10, 0.6), (1.50, 0.6)),
    "HWB11": ((0.90, 0.6), (0.90, 0.6), (1.10, 0.6), (1.50, 0.6)),
    "HWB12": ((0.25, 0.6), (0.35, 0.6), (0.45, 0.6), (0.70, 0.6)),
    "HWB13": ((0.30, 0.6), (0.50, 0.6), (0.60, 0.6), (0.90, 0.6)),
    "HWB14": ((0.50, 0.6), (0.80, 0.6), (1.10, 0.6), (1.70, 0.6)),
    "HWB15": ((0.75, 0.6), (0.75, 0.6), (0.75, 0.6), (1.10, 0.6)),
    "HWB16": ((0.90, 0.6), (0.90, 0.6), (1.10, 0.6), (1.50, 0.6)),
    "HWB17": ((0.25, 0.6), (0.35, 0.6), (0.45, 0.6), (0.70, 0.6)),
    "HWB18": ((0.30, 0.6), (0.50, 0.6), (0.60, 0.6), (0.90, 0.6)),
    "HWB19": ((0.50, 0.6), (0.80, 0.6), (1.10, 0.6), (1.70, 0.6)),
    "HWB20": ((0.35, 0.6), (0.45, 0.6), (0.55, 0.6), (0.80, 0.6)),
    "HWB21": ((0.60, 0.6), (0.90, 0.6), (1.30, 0.6), (1.60, 0.6)),
    "HWB22": ((0.60, 0.6), (0.90, 0.6), (1.10, 0.6), (1.50, 0.6)),
    "HWB23": ((0.90, 0.6), (0.90, 0.6), (1.10, 0.6), (1.50, 0.6)),
    "HWB24": ((0.25, 0.6), (0.35, 0.6), (0.45, 0.6), (0.70, 0.6)),
    "HWB25": ((0.30, 0.6), (0.50, 0.6), (0.60, 0.6), (0.90, 0.6)),
    "HWB26": ((0.75, 0.6), (0.75, 0.6), (0.75, 0.6), (1.10, 0.6)),
    "HWB27": ((0.75, 0.6), (0.75, 0.6), (0.75, 0.6), (1.10, 0.6)),
    "HWB28": ((0.80, 0.6), (1.00, 0.6), (1.20, 0.6), (1.70, 0.6)),
}

BRIDGE_DESCRIPTIONS = {
    "HWB1": "major bridge, span > 150 m, conventional design",
    "HWB2": "major bridge, span > 150 m, seismic design",
    "HWB3": "single span, conventional",
    "HWB4": "single span, seismic",
    "HWB5": "concrete, multi-column bents, simply supported, conventional (non-California)",
    "HWB6": "concrete, multi-column bents, simply supported, conventional (California)",
    "HWB7": "concrete, multi-column bents, simply supported, seismic",
    "HWB8": "concrete, single-column bents, box girder, continuous, conventional (California)",
    "HWB9": "concrete, single-column bents, box girder, continuous, seismic (California)",
    "HWB10": "concrete, continuous, conventional",
    "HWB11": "concrete, continuous, seismic",
    "HWB12": "steel, multi-column bents, simply supported spans >= 20 m, conventional (non-California)",
    "HWB13": "steel, multi-column bents, simply supported spans >= 20 m, conventional (California)",
    "HWB14": "steel, multi-column bents, simply supported, seismic",
    "HWB15": "steel, continuous spans >= 20 m, conventional",
    "HWB16": "steel, continuous spans >= 20 m, seismic",
    "HWB17": "prestressed concrete, multi-column bents, simply supported, conventional (non-California)",
    "HWB18": "prestressed concrete, multi-column bents, simply supported, conventional (California)",
    "HWB19": "prestressed concrete, multi-column bents, simply supported, seismic",
    "HWB20": "prestressed concrete, single-column bents, box girder, continuous, conventional",
    "HWB21": "prestressed concrete, single-column bents, box girder, continuous, seismic",
    "HWB22": "prestressed concrete, continuous, conventional",
    "HWB23": "prestressed concrete, continuous, seismic",
    "HWB24": "steel, multi-column bents, simply supported spans < 20 m, conventional (non-California)",
    "HWB25": "steel, multi-column bents, simply supported spans < 20 m, conventional (California)",
    "HWB26": "steel, continuous spans < 20 m, conventional (non-California)",
    "HWB27": "steel, continuous spans < 20 m, conventional (California)",
    "HWB28": "any other bridge",
}

#: Ground-motion measure of each class family (classes not listed use PGA).
CLASS_MEASURE = {name: "SA1" for name in BRIDGE_CLASSES}
