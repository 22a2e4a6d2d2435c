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

* Potable water facilities: treatment plants PWT1-PWT6, pumping plants PPP1-PPP4 and
  on-ground tanks PST.G.C.A / PST.G.C.U / PST.G.S.A / PST.G.S.U, all on PGA.  Values from
  Hazus-MH 2.1, Technical Manual, chapter 8 (potable water), as transcribed in the R3
  regional-recovery simulator (GitHub rccosta1/R3, ``R3_Source/Networks/Models/Water/``
  ``RWaterTreatmentFacilityModel.cpp``, ``RWaterPumpStationModel.cpp``,
  ``RWaterStorageTankModel.cpp`` and, for the tanks, ``Fuel/RFuelTankFarmModel.cpp``), which
  cites the manual by page (treatment plants p. 398, pumping plants p. 399, tanks p. 394),
  not by table number; the table numbers could not be checked from here.  The same files
  carry the electric-power substation and generation curves, which agree with the Hazus 5.1
  values of ``cascade/hazards.py`` (SimCenter) to the last digit except one typo (EP.S.H.U
  moderate 0.013 for 0.13): a check of the transcriber, not of the water tables themselves.
  Class labels: PWT1-6 are R3's own (Hazus's) names; the pumping-plant numbering PPP1-4
  follows the order small/anchored, small/unanchored, medium-large/anchored,
  medium-large/unanchored (R3 names them only by description; pyincore's fragility-mapping
  rules use Hazus class names such as "PPP1" and "PWT2"); the tank names follow SimCenter pelicun's labels
  (``PST.G.C.A`` = potable water storage tank, on ground, concrete, anchored).

* Wells PWE1 and natural-gas compressor stations NGC1 (anchored) / NGC2 (unanchored), on
  PGA: the CIGRA toolbox's transcription of the Hazus tables (GitHub CICR-Lab/CIGRA,
  ``SeismicCascadeComDamg/WaterComSeismicFragilityParams.xlsx`` row "WL",
  ``GasComSeismicFragilityParams.xlsx`` rows "CSA", "CSU").  CIGRA's rows for the treatment
  plants, pumping plants and on-ground tanks equal R3's values above to the last digit: two
  independent transcriptions agree, which is the check these tables get here.  The class
  names are Hazus's prefixes (PWE, NGC), numbered anchored before unanchored as CIGRA orders
  them; the numbering could not be checked.

Not transcribed
---------------
* Tanks above ground (steel), on-ground wood and buried concrete: R3 has values, but its two
  copies label the wood row differently, the above-ground steel row has β = 0.10 for every
  state (not credible as a Hazus dispersion) and the buried tank is damaged by ground
  deformation only.  Left out rather than guessed.
* Waste-water lift stations, natural-gas regulator/metering stations and communication
  central offices: no transcription that could be checked was found (SimCenter's
  water_network library has pipes only; pyincore keeps facility fragilities on its server;
  CIGRA covers power, water, gas and roads only).  Cell sites: Hazus has no class.
  Scenario files can give such kinds ``{median = g, beta = β}`` themselves.
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


#: Hazus-MH 2.1 potable water facilities (chapter 8), damaged by PGA: (median PGA in g, β)
#: for slight, moderate, extensive, complete.  Source and caveats in the module docstring.
#: Transcribed from rccosta1/R3 (R3_Source/Networks/Models/Water, Fuel), which cites
#: "Hazus 2.1" pages 398 (treatment plants), 399 (pumping plants) and 394 (tanks).
WATER_CLASSES: dict[str, tuple[tuple[float, float], ...]] = {
    # Treatment plants, RWaterTreatmentFacilityModel.cpp ("HAZUS 2.1 pg. 398").
    "PWT1": ((0.25, 0.50), (0.38, 0.50), (0.53, 0.60), (0.83, 0.60)),
    "PWT2": ((0.16, 0.40), (0.27, 0.40), (0.53, 0.60), (0.83, 0.60)),
    "PWT3": ((0.37, 0.40), (0.52, 0.40), (0.73, 0.50), (1.28, 0.50)),
    "PWT4": ((0.20, 0.40), (0.35, 0.40), (0.75, 0.50), (1.28, 0.50)),
    "PWT5": ((0.44, 0.40), (0.58, 0.40), (0.87, 0.45), (1.57, 0.45)),
    "PWT6": ((0.22, 0.40), (0.35, 0.40), (0.87, 0.45), (1.57, 0.45)),
    # Pumping plants, RWaterPumpStationModel.cpp ("HAZUS 2.1 pg. 399").
    "PPP1": ((0.15, 0.70), (0.36, 0.65), (0.66, 0.65), (1.50, 0.80)),
    "PPP2": ((0.13, 0.60), (0.28, 0.50), (0.66, 0.65), (1.50, 0.80)),
    "PPP3": ((0.15, 0.75), (0.36, 0.65), (0.77, 0.65), (1.50, 0.80)),
    "PPP4": ((0.13, 0.60), (0.28, 0.50), (0.77, 0.65), (1.50, 0.80)),
    # On-ground tanks, RFuelTankFarmModel.cpp = RWaterStorageTankModel.cpp ("pg. 394").
    "PST.G.C.A": ((0.25, 0.55), (0.52, 0.70), (0.95, 0.60), (1.64, 0.70)),
    "PST.G.C.U": ((0.18, 0.60), (0.42, 0.70), (0.70, 0.55), (1.04, 0.60)),
    "PST.G.S.A": ((0.30, 0.60), (0.70, 0.60), (1.25, 0.65), (1.60, 0.60)),
    "PST.G.S.U": ((0.15, 0.70), (0.35, 0.75), (0.68, 0.75), (0.95, 0.70)),
    # Wells, from CIGRA (second source, see WELL_GAS_SOURCE): row "Well", type "WL".
    "PWE1": ((0.15, 0.75), (0.36, 0.65), (0.72, 0.65), (1.50, 0.80)),
}

#: Where the wells and the gas compressor stations come from: the CIGRA toolbox (GitHub
#: CICR-Lab/CIGRA, ``SeismicCascadeComDamg/WaterComSeismicFragilityParams.xlsx`` and
#: ``GasComSeismicFragilityParams.xlsx``, sheet "GroundShakingFragilityParams"), which
#: transcribes the Hazus tables without table numbers.  Its rows for treatment plants,
#: pumping plants and on-ground tanks equal the R3 values above to the last digit, an
#: independent check of both transcriptions.
WELL_GAS_SOURCE = "CIGRA (CICR-Lab/CIGRA), SeismicCascadeComDamg/*ComSeismicFragilityParams.xlsx"

#: Hazus natural-gas compressor stations, on PGA: (median g, β) for slight, moderate,
#: extensive, complete; CIGRA types "CSA" (anchored) and "CSU" (unanchored).
GAS_CLASSES: dict[str, tuple[tuple[float, float], ...]] = {
    "NGC1": ((0.15, 0.75), (0.34, 0.65), (0.77, 0.65), (1.50, 0.80)),
    "NGC2": ((0.12, 0.60), (0.24, 0.60), (0.77, 0.65), (1.50, 0.80)),
}
GAS_DESCRIPTIONS = {
    "NGC1": "natural-gas compressor station, anchored components",
    "NGC2": "natural-gas compressor station, unanchored components",
}

WATER_DESCRIPTIONS = {
    "PWT1": "water treatment plant, small (< 50 MGD), anchored components",
    "PWT2": "water treatment plant, small (< 50 MGD), unanchored components",
    "PWT3": "water treatment plant, medium (50-200 MGD), anchored components",
    "PWT4": "water treatment plant, medium (50-200 MGD), unanchored components",
    "PWT5": "water treatment plant, large (> 200 MGD), anchored components",
    "PWT6": "water treatment plant, large (> 200 MGD), unanchored components",
    "PPP1": "water pumping plant, small, anchored components",
    "PPP2": "water pumping plant, small, unanchored components",
    "PPP3": "water pumping plant, medium/large, anchored components",
    "PPP4": "water pumping plant, medium/large, unanchored components",
    "PST.G.C.A": "water storage tank, on ground, concrete, anchored",
    "PST.G.C.U": "water storage tank, on ground, concrete, unanchored",
    "PST.G.S.A": "water storage tank, on ground, steel, anchored",
    "PST.G.S.U": "water storage tank, on ground, steel, unanchored",
    "PWE1": "water well (pump and well casing)",
}

#: Every class of this module: name -> four (median, β) pairs.
FACILITY_CLASSES = {**BRIDGE_CLASSES, **WATER_CLASSES, **GAS_CLASSES}
DESCRIPTIONS = {**BRIDGE_DESCRIPTIONS, **WATER_DESCRIPTIONS, **GAS_DESCRIPTIONS}
