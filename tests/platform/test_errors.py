import orjson
import pytest
from starlette.requests import Request

from medmesh.platform.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    MedmeshError,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
    render_oauth_error,
    render_problem,
)


def request(path: str = "/things") -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
    )


@pytest.mark.parametrize(
    ("error_class", "status", "code"),
    [
        (BadRequest, 400, "bad_request"),
        (Unauthorized, 401, "unauthorized"),
        (Forbidden, 403, "forbidden"),
        (NotFound, 404, "not_found"),
        (Conflict, 409, "conflict"),
        (Gone, 410, "gone"),
        (PreconditionFailed, 412, "precondition_failed"),
        (PayloadTooLarge, 413, "payload_too_large"),
        (UnsupportedMediaType, 415, "unsupported_media_type"),
        (Unprocessable, 422, "unprocessable"),
        (TooManyRequests, 429, "rate_limited"),
        (ServiceUnavailable, 503, "unavailable"),
    ],
)
def test_each_error_has_its_status_and_code(
    error_class: type[MedmeshError], status: int, code: str
) -> None:
    error = error_class("what went wrong")

    assert (error.status, error.code, error.message) == (status, code, "what went wrong")
    assert isinstance(error, MedmeshError)


def test_status_and_code_can_be_given_per_instance() -> None:
    error = BadRequest("nope", code="invalid_scope", status=422)

    assert (error.status, error.code) == (422, "invalid_scope")
    assert BadRequest("x").code == "bad_request"


def test_repr_is_useful() -> None:
    assert repr(NotFound("no such patient")) == (
        "NotFound(status=404, code='not_found', message='no such patient')"
    )


def test_problem_details_rendering() -> None:
    error = TooManyRequests(
        "slow down", headers={"Retry-After": "3"}, extra={"retry_after_seconds": 3}
    )

    response = render_problem(request(), error)

    assert response.status_code == 429
    assert response.media_type == "application/problem+json"
    assert response.headers["retry-after"] == "3"
    assert orjson.loads(response.body) == {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "code": "rate_limited",
        "detail": "slow down",
        "retry_after_seconds": 3,
    }


def test_problem_title_of_an_unusual_status() -> None:
    response = render_problem(request(), MedmeshError("teapot", status=418, code="teapot"))

    assert orjson.loads(response.body)["title"] == "Error"


def test_oauth_error_rendering() -> None:
    error = Unauthorized(
        "client authentication failed",
        code="invalid_client",
        headers={"WWW-Authenticate": 'Basic realm="medmesh"'},
    )

    response = render_oauth_error(request("/oauth/token"), error)

    assert response.status_code == 401
    assert response.media_type == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["www-authenticate"] == 'Basic realm="medmesh"'
    assert orjson.loads(response.body) == {
        "error": "invalid_client",
        "error_description": "client authentication failed",
    }
