"""Synchronous generation requests and the realism report answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from medmesh.synthetic.options import GenerationRequest


class GenerateRequest(GenerationRequest):
    """A small run answered in the response body."""

    format: Literal["bundle", "ndjson"] = Field(
        default="bundle",
        description="bundle: one FHIR Bundle of type collection whose first entry is the "
        "directory transaction Bundle (PUTs) and the others one transaction Bundle per patient "
        "(each can be POSTed to /fhir as is, the directory first); ndjson: "
        "application/fhir+ndjson, one resource per line, the directory first",
    )


class RealismAnswer(BaseModel):
    seed: int
    options: dict[str, Any]
    generator_version: str
    report: dict[str, Any] = Field(
        description="prevalence per condition and age band against its target, vital-sign "
        "distributions"
    )
    text: str = Field(description="the same report as the CLI prints it")
