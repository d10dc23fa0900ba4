"""The search parameters phi-service supports, per resource type (FHIR R4 definitions, reduced).

Every type has ``_id`` and ``_lastUpdated``; the types without a catalogue entry have the
reference parameters of their R4 Patient compartment (and ``patient``).

Each :class:`SearchParamDef` names the elements it reads (``paths``: dotted element names,
``[x]`` for a choice such as ``effective[x]``). ``blind`` parameters (names, identifiers,
telecom, addresses) are stored only as keyed blind-index tokens. A parameter with ``key``
reuses the index rows of another one (``patient`` is ``subject`` restricted to Patients), so
they are written once.
"""

from __future__ import annotations

from medmesh.phi.fhir.compartment import COMPARTMENT_PARAMETERS
from medmesh.phi.fhir.types import SUPPORTED_TYPES
from medmesh.phi.search.catalog_admin import ADMIN_PARAMETERS
from medmesh.phi.search.catalog_clinical import CLINICAL_PARAMETERS
from medmesh.phi.search.params import DATE, REFERENCE, STRING, TOKEN, SearchParamDef

__all__ = [
    "DATE",
    "REFERENCE",
    "SEARCH_PARAMETERS",
    "STRING",
    "TOKEN",
    "SearchParamDef",
    "parameters_of",
]


def _compartment_parameters(resource_type: str) -> list[SearchParamDef]:
    """The reference parameters of a type's R4 Patient compartment (``subject``, ``author``
    ...), and ``patient`` (the first of them pointing at a Patient) when none is so named."""
    found = [
        SearchParamDef(
            name,
            REFERENCE,
            f"A reference of the patient compartment ({name})",
            paths,
            target=("Patient",) if name == "patient" else (),
        )
        for name, paths in COMPARTMENT_PARAMETERS.get(resource_type, ())
    ]
    if found and all(d.name != "patient" for d in found):
        first = found[0]
        found.append(
            SearchParamDef(
                "patient",
                REFERENCE,
                f"The patient ({first.name} pointing at a Patient)",
                first.paths,
                target=("Patient",),
                key=first.name,
            )
        )
    return found


_CATALOGUED: dict[str, list[SearchParamDef]] = {**ADMIN_PARAMETERS, **CLINICAL_PARAMETERS}
#: Every stored type: the catalogued ones, and the others with their compartment's references.
_BY_TYPE: dict[str, list[SearchParamDef]] = {
    resource_type: _CATALOGUED.get(resource_type) or _compartment_parameters(resource_type)
    for resource_type in sorted(SUPPORTED_TYPES)
}

#: Parameters of every type, evaluated on the stored row rather than on index tables.
COMMON_PARAMETERS: dict[str, SearchParamDef] = {
    "_id": SearchParamDef("_id", TOKEN, "The logical id of the resource"),
    "_lastUpdated": SearchParamDef(
        "_lastUpdated", DATE, "When the resource last changed (prefixes allowed)"
    ),
}

#: type -> parameter name -> definition (common parameters included).
SEARCH_PARAMETERS: dict[str, dict[str, SearchParamDef]] = {
    resource_type: {**COMMON_PARAMETERS, **{d.name: d for d in defs}}
    for resource_type, defs in _BY_TYPE.items()
}

#: The parameters whose rows are stored (aliases with ``key`` reuse another's rows).
INDEXED: dict[str, tuple[SearchParamDef, ...]] = {
    resource_type: tuple(d for d in defs if d.key is None and d.paths)
    for resource_type, defs in _BY_TYPE.items()
}

#: Parameters that accept ``_sort`` (dates, plus the row's own id and time).
SORTABLE_TYPES = (DATE,)


def parameters_of(resource_type: str) -> dict[str, SearchParamDef]:
    """The parameters of ``resource_type`` (only the common ones for a type with none defined)."""
    return SEARCH_PARAMETERS.get(resource_type, COMMON_PARAMETERS)
