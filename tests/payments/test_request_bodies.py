"""The OpenAPI document describes each POST's form body from the ``Spec`` its endpoint checks
with: the flat bracket names the document lists are exactly the ones the checks accept."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from medmesh.cli.openapi import openapi_document
from medmesh.payments.customers import schemas as customers
from medmesh.payments.errors import ParameterUnknown
from medmesh.payments.params import Spec, nest
from medmesh.payments.payment_intents import schemas as intents
from medmesh.payments.payment_methods import schemas as methods
from medmesh.payments.refunds import schemas as refunds
from medmesh.payments.request_bodies import FORM, form_body, form_schema
from medmesh.payments.webhooks import schemas as webhooks

#: Every POST under /v1 and the spec its endpoint checks the parameters with.
POSTS: dict[str, Spec] = {
    "/v1/customers": customers.CREATE,
    "/v1/customers/{customer_id}": customers.UPDATE,
    "/v1/payment_methods": methods.CREATE,
    "/v1/payment_methods/{payment_method_id}": methods.UPDATE,
    "/v1/payment_methods/{payment_method_id}/attach": methods.ATTACH,
    "/v1/payment_methods/{payment_method_id}/detach": methods.DETACH,
    "/v1/payment_intents": intents.CREATE,
    "/v1/payment_intents/{intent_id}": intents.UPDATE,
    "/v1/payment_intents/{intent_id}/confirm": intents.CONFIRM,
    "/v1/payment_intents/{intent_id}/capture": intents.CAPTURE,
    "/v1/payment_intents/{intent_id}/cancel": intents.CANCEL,
    "/v1/payment_intents/{intent_id}/three_d_secure": intents.THREE_D_SECURE,
    "/v1/refunds": refunds.CREATE,
    "/v1/refunds/{refund_id}": refunds.UPDATE,
    "/v1/webhook_endpoints": webhooks.CREATE,
    "/v1/webhook_endpoints/{endpoint_id}": webhooks.UPDATE,
    "/v1/webhook_endpoints/{endpoint_id}/roll_secret": webhooks.ROLL,
}


def test_a_capture_body_is_described_field_by_field() -> None:
    assert form_schema(intents.CAPTURE) == {
        "type": "object",
        "properties": {
            "amount_to_capture": {"type": "integer", "minimum": 1, "maximum": 99_999_999},
            "expand[]": {"type": "array", "items": {"type": "string", "maxLength": 5000}},
        },
        "additionalProperties": False,
        "patternProperties": {
            r"^metadata\[[^\[\]]{1,40}\]$": {"type": "string", "maxLength": 500},
        },
    }


def test_nested_fields_are_bracket_names_required_only_under_a_required_parent() -> None:
    schema = form_schema(methods.CREATE)
    assert schema["required"] == ["type"]
    assert schema["properties"]["type"] == {"type": "string", "enum": ["card"]}
    assert schema["properties"]["card[exp_month]"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 12,
    }
    assert "billing_details[address][postal_code]" in schema["properties"]
    assert "card" not in schema["properties"]


def test_required_lists_and_booleans_as_a_form_spells_them() -> None:
    created = form_schema(webhooks.CREATE)
    assert created["required"] == ["enabled_events[]", "url"]
    assert created["properties"]["enabled_events[]"] == {
        "type": "array",
        "items": {"type": "string", "enum": sorted(webhooks.EVENT_TYPES | {"*"})},
        "minItems": 1,
    }
    assert created["properties"]["url"] == {
        "type": "string",
        "maxLength": 2048,
        "pattern": "^https?://[^/?#]+",
    }
    assert form_schema(webhooks.UPDATE)["properties"]["disabled"] == {
        "type": "string",
        "enum": ["false", "true"],
    }
    assert form_body(intents.THREE_D_SECURE)["requestBody"]["required"] is True
    assert form_body(intents.CONFIRM)["requestBody"]["required"] is False


def test_every_post_of_the_document_carries_the_body_its_endpoint_checks() -> None:
    paths = openapi_document("payments")["paths"]
    posts = {path for path, operations in paths.items() if "post" in operations}
    assert posts == set(POSTS)
    for path, spec in POSTS.items():
        assert paths[path]["post"]["requestBody"] == form_body(spec)["requestBody"], path
        assert set(paths[path]["post"]["requestBody"]["content"]) == {FORM}


def _sample(schema: dict[str, Any]) -> list[tuple[str, str]]:
    """A form with every field the schema names, each with a value it allows."""
    pairs: list[tuple[str, str]] = []
    for name, prop in schema["properties"].items():
        if name == "expand[]":
            continue
        item = prop["items"] if prop["type"] == "array" else prop
        if "enum" in item:
            value = item["enum"][-1]
        elif item["type"] == "integer":
            value = str(item["minimum"])
        elif "pattern" in item:
            value = "https://h.example/x"
        else:
            value = "x"
        pairs.append((name, value))
    if "patternProperties" in schema:
        pairs.append(("metadata[order]", "o-1"))
    return pairs


@pytest.mark.parametrize("path", sorted(POSTS))
def test_a_form_of_every_described_field_passes_the_checks(path: str) -> None:
    spec = POSTS[path]
    pairs = _sample(form_schema(spec))
    params = nest(parse_qsl(urlencode(pairs), keep_blank_values=True))
    checked = spec.parse(params)
    assert set(checked) == set(params)
    with pytest.raises(ParameterUnknown):
        spec.parse({**params, "not_described": "x"})
