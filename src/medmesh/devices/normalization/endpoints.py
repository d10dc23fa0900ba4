"""``/v1/templates``: the mapping templates in force, and what one makes of a sample."""

from __future__ import annotations

from fastapi import APIRouter

from medmesh.devices.components import Components, Reader
from medmesh.devices.normalization.schemas import Preview, PreviewSample, TemplateList
from medmesh.devices.normalization.service import preview
from medmesh.devices.normalization.templates import MappingTemplate

router = APIRouter(prefix="/v1/templates", tags=["templates"])
PROBLEM: dict[str, object] = {
    "description": "problem details",
    "content": {"application/problem+json": {}},
}
ERRORS: dict[int | str, dict[str, object]] = {
    400: PROBLEM,
    401: PROBLEM,
    403: PROBLEM,
    404: PROBLEM,
}


@router.get("", summary="the mapping templates in force", responses=ERRORS)
async def list_templates(caller: Reader, components: Components) -> TemplateList:
    """One template per metric: the built-in ones, or a deployment's from
    `MEDMESH_DEVICES_TEMPLATE_DIR` where it replaces them."""
    return TemplateList(data=sorted(components.templates.by_name.values(), key=lambda t: t.name))


@router.get("/{name}", summary="a mapping template", responses=ERRORS)
async def get_template(name: str, caller: Reader, components: Components) -> MappingTemplate:
    """The template as its JSON file holds it."""
    return components.templates.get(name)


@router.post("/{name}/$preview", summary="what a template makes of a sample", responses=ERRORS)
async def preview_template(
    name: str, sample: PreviewSample, caller: Reader, components: Components
) -> Preview:
    """Checks `sample` as ingest would (unit, bounds, timestamp) and answers the reading as it
    would be stored and the FHIR R4 Observation the template makes of it. Nothing is stored."""
    template = components.templates.get(name)
    return preview(template, sample, components.settings.future_skew_seconds)
