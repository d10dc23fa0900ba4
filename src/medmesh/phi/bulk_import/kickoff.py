"""What an ``$import`` kick-off asks for: its inputs, read from a Parameters resource.

The body follows the Bulk Data import proposal: ``inputFormat`` (``application/fhir+ndjson``)
and one ``input`` per file, with parts ``type`` (the resource type it holds) and ``url``.
A URL is fetched only when it starts with one of ``PhiSettings.import_url_prefixes``: the
server never reaches an address the operator did not name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medmesh.phi.fhir.errors import InvalidResource
from medmesh.phi.fhir.types import SUPPORTED_TYPES

NDJSON = "application/fhir+ndjson"
MAX_INPUTS = 1000


@dataclass(frozen=True)
class ImportInput:
    resource_type: str
    url: str


def _value(part: dict[str, Any]) -> Any:
    return next((v for k, v in part.items() if k.startswith("value")), None)


def parse_kickoff(body: Any, allowed_prefixes: list[str]) -> list[ImportInput]:
    """The inputs of a kick-off body; :class:`InvalidResource` (400) names what is wrong."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidResource(
            "the body of $import is a Parameters resource", issue_code="structure"
        )
    parameters = body.get("parameter")
    if not isinstance(parameters, list):
        raise InvalidResource("Parameters.parameter is missing", issue_code="required")
    inputs: list[ImportInput] = []
    for index, parameter in enumerate(parameters):
        where = f"Parameters.parameter[{index}]"
        if not isinstance(parameter, dict):
            raise InvalidResource(f"{where} is not an object", issue_code="structure")
        name = parameter.get("name")
        if name == "inputFormat":
            if _value(parameter) != NDJSON:
                raise InvalidResource(
                    f"{where}: inputFormat is {NDJSON} only", issue_code="not-supported"
                )
        elif name == "input":
            inputs.append(_input(parameter, where, allowed_prefixes))
    if not inputs:
        raise InvalidResource(
            "$import needs at least one input (type and url)", issue_code="required"
        )
    if len(inputs) > MAX_INPUTS:
        raise InvalidResource(f"$import takes at most {MAX_INPUTS} inputs", issue_code="too-costly")
    return inputs


def _input(parameter: dict[str, Any], where: str, allowed_prefixes: list[str]) -> ImportInput:
    parts = parameter.get("part")
    values = {
        part.get("name"): _value(part)
        for part in (parts if isinstance(parts, list) else [])
        if isinstance(part, dict)
    }
    resource_type, url = values.get("type"), values.get("url")
    if not isinstance(resource_type, str) or resource_type not in SUPPORTED_TYPES:
        raise InvalidResource(
            f"{where}: type is not a resource type stored here", issue_code="value"
        )
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise InvalidResource(f"{where}: url is not an http(s) URL", issue_code="value")
    if "@" in url.split("/", 3)[2] or not any(url.startswith(p) for p in allowed_prefixes):
        raise InvalidResource(
            f"{where}: url is not under a location this server imports from "
            "(MEDMESH_PHI_IMPORT_URL_PREFIXES)",
            issue_code="security",
        )
    return ImportInput(resource_type, url)
