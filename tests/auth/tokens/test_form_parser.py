"""The form parser of the OAuth endpoints gives what the standard library's strict parser gives."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from medmesh.auth.tokens.forms import MAX_FIELDS, parse_pairs

BODIES = [
    "",
    "grant_type=client_credentials&scope=system%2F*.cruds",
    "grant_type=client_credentials&scope=system/*.cruds+openid",
    "a=&b=1",
    "a=1=2",
    "=x",
    "name=%C3%A9l%C3%A8ve&x=%2B%26%3D",
    "scope=patient%2FObservation.rs%20openid",
    "a=1&a=2",
    "&".join(f"f{i}=v" for i in range(MAX_FIELDS)),
]
MALFORMED = [
    "a",
    "a=1&b",
    "a=1&&b=2",
    "a=1&",
    "&a=1",
    "a=%FF",  # not UTF-8 once decoded
    "&".join(f"f{i}=v" for i in range(MAX_FIELDS + 1)),
]


def _stdlib(text: str) -> list[tuple[str, str]]:
    return parse_qsl(
        text,
        keep_blank_values=True,
        strict_parsing=bool(text),
        max_num_fields=MAX_FIELDS,
        errors="strict",
    )


@pytest.mark.parametrize("body", BODIES)
def test_the_same_pairs_as_the_standard_library(body: str) -> None:
    assert parse_pairs(body) == _stdlib(body)


@pytest.mark.parametrize("body", MALFORMED)
def test_what_the_standard_library_refuses_is_refused(body: str) -> None:
    # Both raise ValueError (UnicodeDecodeError is one).
    with pytest.raises(ValueError):
        _stdlib(body)
    with pytest.raises(ValueError):
        parse_pairs(body)
