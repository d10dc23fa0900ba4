"""Search parameter definitions and the helpers the catalogues are written with."""

from __future__ import annotations

from dataclasses import dataclass

#: FHIR search parameter types used here.
STRING, TOKEN, DATE, REFERENCE = "string", "token", "date", "reference"


@dataclass(frozen=True, slots=True)
class SearchParamDef:
    name: str
    type: str
    documentation: str
    paths: tuple[str, ...] = ()
    #: Resource types a reference may point at (empty: any).
    target: tuple[str, ...] = ()
    #: Whether values are stored only as blind-index tokens (PHI).
    blind: bool = False
    #: ContactPoint.system a telecom parameter is limited to (``phone``, ``email``).
    telecom_system: str | None = None
    #: Only these parts of a HumanName / Address (None: every part).
    parts: tuple[str, ...] | None = None
    #: The parameter whose index rows this one reads (None: its own).
    key: str | None = None
    #: Parameters whose rows a search on this one reads besides its own: ``name`` stores only
    #: the parts of a name that ``family`` and ``given`` do not, instead of every part again.
    also: tuple[str, ...] = ()

    @property
    def read_keys(self) -> tuple[str, ...]:
        """The index keys of the rows a search on this parameter matches."""
        return (self.index_key, *self.also)

    @property
    def index_key(self) -> str:
        return self.key or self.name


def param(name: str, type_: str, doc: str, *paths: str, **extra: object) -> SearchParamDef:
    return SearchParamDef(name, type_, doc, tuple(paths), **extra)  # type: ignore[arg-type]


def patient_link(element: str) -> list[SearchParamDef]:
    """``subject`` (any target) and ``patient`` (the same rows, Patients only)."""
    return [
        param(element, REFERENCE, f"Who or what the resource is about ({element})", element),
        param(
            "patient",
            REFERENCE,
            f"The patient ({element} pointing at a Patient)",
            element,
            target=("Patient",),
            key=element,
        ),
    ]


def patient(element: str = "patient") -> list[SearchParamDef]:
    return [param("patient", REFERENCE, "The patient", element, target=("Patient",))]


def identifier(*paths: str) -> SearchParamDef:
    return param(
        "identifier",
        TOKEN,
        "An identifier (system|value or value); blind-indexed",
        *(paths or ("identifier",)),
        blind=True,
    )


def encounter(path: str = "encounter") -> SearchParamDef:
    return param(
        "encounter", REFERENCE, "The encounter of the resource", path, target=("Encounter",)
    )


def status() -> SearchParamDef:
    return param("status", TOKEN, "The status", "status")


def token(name: str, doc: str, *paths: str) -> SearchParamDef:
    return param(name, TOKEN, doc, *paths)


def date(name: str, doc: str, *paths: str) -> SearchParamDef:
    return param(name, DATE, doc, *paths)


def ref(
    name: str, doc: str, *paths: str, target: tuple[str, ...] = (), key: str | None = None
) -> SearchParamDef:
    return param(name, REFERENCE, doc, *paths, target=target, key=key)


def person(with_name_parts: bool = True) -> list[SearchParamDef]:
    """Demographics of a person (Patient, RelatedPerson, Practitioner): all blind-indexed.

    ``name`` and ``address`` match any part; the parts that have a parameter of their own
    (``family``, ``address-city``...) are stored once, under that parameter, and read by both.
    """
    address_parts = {
        "city": "address-city",
        "state": "address-state",
        "postalCode": "address-postalcode",
        "country": "address-country",
    }
    name_parts = {"family": "family", "given": "given"} if with_name_parts else {}
    found = [
        param(
            "name",
            STRING,
            "Starts-with on any part of a name (family, given, prefix, suffix, text); "
            "case- and accent-insensitive",
            "name",
            blind=True,
            parts=_other_parts(NAME_PARTS, name_parts),
            also=tuple(name_parts.values()),
        ),
        param(
            "phone",
            TOKEN,
            "A phone number (exact, digits compared)",
            "telecom",
            blind=True,
            telecom_system="phone",
        ),
        param(
            "email",
            TOKEN,
            "An e-mail address (exact, case-insensitive)",
            "telecom",
            blind=True,
            telecom_system="email",
        ),
        param("telecom", TOKEN, "Any contact point value", "telecom", blind=True),
        param(
            "address",
            STRING,
            "Starts-with on any part of an address",
            "address",
            blind=True,
            parts=_other_parts(ADDRESS_PARTS, address_parts),
            also=tuple(address_parts.values()),
        ),
        param(
            "address-city",
            STRING,
            "Starts-with on the city of an address",
            "address",
            blind=True,
            parts=("city",),
        ),
        param(
            "address-state",
            STRING,
            "Starts-with on the state of an address",
            "address",
            blind=True,
            parts=("state",),
        ),
        param(
            "address-postalcode",
            STRING,
            "Starts-with on the postal code of an address",
            "address",
            blind=True,
            parts=("postalCode",),
        ),
        param(
            "address-country",
            STRING,
            "Starts-with on the country of an address",
            "address",
            blind=True,
            parts=("country",),
        ),
        token("gender", "Administrative gender", "gender"),
        identifier(),
    ]
    if with_name_parts:
        found += [
            param(
                "family",
                STRING,
                "Starts-with on the family name; case- and accent-insensitive",
                "name",
                blind=True,
                parts=("family",),
            ),
            param(
                "given",
                STRING,
                "Starts-with on a given name; case- and accent-insensitive",
                "name",
                blind=True,
                parts=("given",),
            ),
        ]
    return found


#: The string parts of a HumanName and of an Address.
NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def _other_parts(
    parts: tuple[str, ...], stored_elsewhere: dict[str, str]
) -> tuple[str, ...] | None:
    """The parts a composite parameter stores itself (None: every part)."""
    if not stored_elsewhere:
        return None
    return tuple(part for part in parts if part not in stored_elsewhere)


CLINICAL_CODE = token("code", "A code (system|code, |code or code)", "code")
CATEGORY = token("category", "The category (system|code or code)", "category")
