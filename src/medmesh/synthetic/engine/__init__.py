"""The synthetic patient generator: a pure library (no HTTP, no I/O).

``PatientGenerator(options).patient(i)`` gives patient ``i`` of a run as plain FHIR R4 dicts,
deterministically from (options, ``i``); ``directory()`` gives the run's shared Organizations,
Locations, Practitioners and PractitionerRoles. Resources share immutable coding dicts, so
callers serialize them and never mutate them.
"""

from medmesh.synthetic.engine.catalog.conditions import CONDITION_KEYS
from medmesh.synthetic.engine.generator import (
    AGE_BANDS,
    PatientFacts,
    PatientGenerator,
    SyntheticPatient,
    age_band,
)
from medmesh.synthetic.engine.options import (
    GENERATOR_VERSION,
    Cohort,
    GenerationOptions,
    InvalidOptions,
    parse_cohort,
)

__all__ = [
    "AGE_BANDS",
    "CONDITION_KEYS",
    "GENERATOR_VERSION",
    "Cohort",
    "GenerationOptions",
    "InvalidOptions",
    "PatientFacts",
    "PatientGenerator",
    "SyntheticPatient",
    "age_band",
    "parse_cohort",
]
