"""A stored resource as the service hands it out, and the checks of what a request names
(type, id, ``If-Match`` version) before anything is read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from medmesh.phi.fhir.errors import InvalidResource, ResourceNotFound
from medmesh.phi.fhir.types import SUPPORTED_TYPES, is_valid_id


@dataclass(frozen=True, slots=True)
class Stored:
    """A resource as stored: its JSON (with ``meta``), version and time."""

    resource: dict[str, Any]
    resource_type: str
    id: str
    version: int
    last_updated: datetime
    patient_id: str | None

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    def headers(self, base: str | None = None) -> dict[str, str]:
        """The response headers of this version: ``ETag``, ``Last-Modified`` and, given the base
        of ``/fhir`` (writes answer with it), ``Location`` (its ``_history`` URL)."""
        headers = {
            "ETag": self.etag,
            "Last-Modified": format_datetime(self.last_updated, usegmt=True),
        }
        if base is not None:
            headers["Location"] = f"{base}/{self.resource_type}/{self.id}/_history/{self.version}"
        return headers

    def search_entry(self, base: str, mode: str) -> dict[str, Any]:
        """This resource as an entry of a searchset Bundle (``mode``: match or include)."""
        return {
            "fullUrl": f"{base}/{self.resource_type}/{self.id}",
            "resource": self.resource,
            "search": {"mode": mode},
        }


def check_type(resource_type: str) -> None:
    if resource_type not in SUPPORTED_TYPES:
        raise ResourceNotFound(
            f"resource type {resource_type[:64]!r} is not supported", issue_code="not-supported"
        )


def check_id(resource_id: str) -> None:
    if not is_valid_id(resource_id):
        raise InvalidResource("the id is not a valid FHIR id", issue_code="value")


def parse_etag(value: str) -> int:
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not (text.isascii() and text.isdigit()):
        raise InvalidResource('If-Match must be a version ETag such as W/"3"', issue_code="value")
    return int(text)
