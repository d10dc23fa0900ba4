"""Form bodies are parsed without Starlette's form parser (``urllib.parse.parse_qsl``): the
parameters are exactly what Starlette's parser gives, for the bodies Stripe's libraries send
and for odd ones (blank values, a name without ``=``, bad escapes, Latin-1 bytes)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request
from starlette.types import Message

from medmesh.payments.errors import InvalidRequest
from medmesh.payments.params import MAX_FIELDS, nest, read_params

BODIES = [
    b"amount=2500&currency=usd&payment_method=pm_card_visa&confirm=true",
    b"a=1&b=&c&metadata[k]=v+w&x=%E2%82%AC&y=%ZZ&z=caf\xe9&&e%5B%5D=1&e[]=2",
    b"card[number]=4242+4242+4242+4242&card[exp_month]=12&expand[0]=customer",
    b"",
]


def _request(body: bytes, content_type: bytes) -> Request:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"content-type", content_type)]
    scope = {"type": "http", "method": "POST", "headers": headers, "query_string": b""}
    return Request({**scope, "path": "/v1/x"}, receive)


async def _starlettes(body: bytes) -> dict[str, Any]:
    form = await _request(body, b"application/x-www-form-urlencoded").form()
    return nest((k, v) for k, v in form.multi_items() if isinstance(v, str))


@pytest.mark.parametrize("body", BODIES)
async def test_a_form_reads_as_starlettes_parser_reads_it(body: bytes) -> None:
    ours = await read_params(_request(body, b"application/x-www-form-urlencoded"))
    assert ours == await _starlettes(body)


async def test_a_form_with_too_many_fields_is_refused() -> None:
    body = b"&".join(b"f%d=1" % i for i in range(MAX_FIELDS + 1))
    with pytest.raises(InvalidRequest, match=f"at most {MAX_FIELDS} parameters"):
        await read_params(_request(body, b"application/x-www-form-urlencoded"))
