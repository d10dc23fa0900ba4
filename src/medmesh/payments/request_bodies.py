"""The OpenAPI text of a POST's form body, made from the ``Spec`` its endpoint checks with:
one property per form field in Stripe's bracket notation (``card[number]``, ``expand[]``),
metadata as a pattern of keys (``metadata[<key>]``)."""

from __future__ import annotations

import re
from typing import Any

from medmesh.payments.params import METADATA_KEY_CHARS, Spec, string_list

FORM = "application/x-www-form-urlencoded"


def form_schema(spec: Spec) -> dict[str, Any]:
    """The JSON Schema of the flat form fields ``spec`` accepts, ``expand[]`` included."""
    properties: dict[str, Any] = {}
    patterns: dict[str, Any] = {}
    required: list[str] = []
    _describe(spec, "", properties, patterns, required, needed=True)
    properties["expand[]"] = {"type": "array", "items": dict(string_list.schema)}
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if patterns:
        schema["patternProperties"] = patterns
    if required:
        schema["required"] = sorted(required)
    return schema


def form_body(spec: Spec) -> dict[str, Any]:
    """The ``requestBody`` of an operation taking ``spec``'s parameters as a form."""
    return {
        "requestBody": {
            "required": bool(spec.required),
            "content": {FORM: {"schema": form_schema(spec)}},
        }
    }


def _describe(
    spec: Spec,
    prefix: str,
    properties: dict[str, Any],
    patterns: dict[str, Any],
    required: list[str],
    *,
    needed: bool,
) -> None:
    # A nested field is required in the flat form only when its parent is required too.
    for key, check in spec.fields.items():
        name = f"{prefix}[{key}]" if prefix else key
        must = needed and key in spec.required
        if check.spec is not None:  # shape "nested"
            _describe(check.spec, name, properties, patterns, required, needed=must)
        elif check.shape == "hash":
            key_pattern = rf"\[[^\[\]]{{1,{METADATA_KEY_CHARS}}}\]"
            patterns[f"^{re.escape(name)}{key_pattern}$"] = dict(check.schema)
        elif check.shape == "list":
            properties[f"{name}[]"] = {
                "type": "array",
                "items": dict(check.schema),
                **({"minItems": 1} if must else {}),
            }
            if must:
                required.append(f"{name}[]")
        else:
            properties[name] = dict(check.schema)
            if must:
                required.append(name)
