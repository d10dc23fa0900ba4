"""Stripe's published schemas (``/work/shared/conformance/stripe``, OpenAPI 3.0) as JSON Schema
validators: ``nullable`` becomes a null alternative, component references become ``$defs``."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

SUBSET = Path("/work/shared/conformance/stripe/stripe-subset.json")


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if not k.startswith("x-") and k != "nullable"}
    ref = out.get("$ref")
    if isinstance(ref, str):
        out["$ref"] = ref.replace("#/components/schemas/", "#/$defs/")
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _document() -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(SUBSET.read_bytes())
    return document


@functools.cache
def _definitions() -> dict[str, Any]:
    converted: dict[str, Any] = _convert(_document()["components"]["schemas"])
    return converted


def errors_against(schema: dict[str, Any], instance: Any) -> list[str]:
    """What is wrong with ``instance`` under ``schema`` (a converted schema), as messages."""
    validator = jsonschema_rs.Draft202012Validator({**schema, "$defs": _definitions()})
    return [
        f"{'/'.join(map(str, e.instance_path))}: {e.message[:300]}"
        for e in validator.iter_errors(instance)
    ]


def object_errors(name: str, instance: Any) -> list[str]:
    """Problems of ``instance`` as Stripe's component schema ``name`` (``payment_intent`` ...)."""
    return errors_against({"$ref": f"#/$defs/{name}"}, instance)


def list_errors(path: str, instance: Any) -> list[str]:
    """Problems of ``instance`` as the 200 answer of ``GET path``."""
    operation = _document()["paths"][path]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    return errors_against(_convert(schema), instance)
