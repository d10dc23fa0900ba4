import logging as std_logging
from pathlib import Path
from typing import ClassVar

import orjson
import pytest
from fastapi import APIRouter
from pydantic_settings import SettingsConfigDict

from medmesh.platform.app import create_service_app
from medmesh.platform.config import ServiceSettings
from medmesh.platform.logging import REDACTED, configure_logging, get_logger, scrub_text
from medmesh.platform.testing import LogLines, app_client
from medmesh.platform.tracing import configure_tracing, tracer

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwYXRpZW50LTEifQ.c2lnbmF0dXJlLWJ5dGVz"


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_DEMO_", extra="ignore")
    service_name: ClassVar[str] = "demo"


@pytest.fixture(autouse=True)
def demo_logging() -> None:
    configure_logging("demo")


def test_lines_are_json_with_the_standard_fields(log_lines: LogLines) -> None:
    get_logger("test").info("thing_happened", count=3)

    [line] = log_lines.text.splitlines()
    record = orjson.loads(line)
    assert record["event"] == "thing_happened"
    assert record["level"] == "info"
    assert record["service"] == "demo"
    assert record["count"] == 3
    assert record["ts"].endswith("Z")
    assert "request_id" not in record
    assert "trace_id" not in record


def test_level_filtering(log_lines: LogLines) -> None:
    configure_logging("demo", level="warning")
    log = get_logger("test")
    log.info("quiet")
    log.warning("loud")

    assert [r["event"] for r in log_lines.records()] == ["loud"]


async def test_lines_inside_a_request_carry_its_request_id(
    tmp_path: Path, log_lines: LogLines
) -> None:
    router = APIRouter()

    @router.get("/work")
    async def work() -> dict[str, str]:
        get_logger("demo").info("working")
        return {}

    app = create_service_app(
        DemoSettings(database_url=f"sqlite+medmesh:///{tmp_path / 'demo.db'}"),
        title="demo",
        version="0",
        description="demo",
        routers=[router],
        verify_tokens=False,
    )
    async with app_client(app) as client:
        response = await client.get("/work", headers={"X-Request-ID": "req-7"})

    assert response.status_code == 200
    [line] = log_lines.events("working")
    assert line["request_id"] == "req-7"
    assert line["service"] == "demo"
    # a request's span is current while the endpoint runs
    assert len(line["trace_id"]) == 32
    assert len(line["span_id"]) == 16


def test_lines_inside_a_span_carry_trace_and_span_ids(log_lines: LogLines) -> None:
    configure_tracing("demo")
    with tracer("test").start_as_current_span("unit") as span:
        get_logger("test").info("inside")
        context = span.get_span_context()

    [line] = log_lines.events("inside")
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "client_secret",
        "name",
        "birthDate",
        "ssn",
        "identifier",
        "address",
        "patient_name",
        "phone_number",
        "access_token",
        "Authorization",
    ],
)
def test_sensitive_keys_are_redacted(log_lines: LogLines, key: str) -> None:
    get_logger("test").info("event", **{key: "Jane Doe"}, nested={key: "Jane Doe"})

    [record] = log_lines.records()
    assert record[key] == REDACTED
    assert record["nested"][key] == REDACTED
    assert "Jane" not in log_lines.text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("card 4111 1111 1111 1111 declined", "4111 1111 1111 1111"),
        ("card 4111-1111-1111-1111 declined", "1111-1111-1111"),
        ("card 4111111111111111 declined", "4111111111111111"),
        ("ssn 123-45-6789 on file", "123-45-6789"),
        ("mail jane.doe@example.org now", "jane.doe@example.org"),
        ("call (555) 123-4567 now", "123-4567"),
        ("call +1 555-123-4567 now", "123-4567"),
        (f"token {JWT} seen", "eyJhbGciOiJSUzI1NiJ9"),
        ("header Bearer abcdefghijklmnop123 seen", "abcdefghijklmnop123"),
        ("header Basic dXNlcjpwYXNzd29yZA== seen", "dXNlcjpwYXNzd29yZA"),
    ],
)
def test_sensitive_values_are_scrubbed_everywhere(
    log_lines: LogLines, text: str, secret: str
) -> None:
    get_logger("test").info(
        f"free text: {text}",
        detail=text,
        nested={"outer": {"inner": [text, {"deep": text}]}},
        items=[text, (text,)],
    )

    assert secret not in log_lines.text
    [record] = log_lines.records()
    assert record["nested"]["outer"]["inner"][1]["deep"].startswith(text.split()[0])


def test_scrub_text_keeps_ordinary_text() -> None:
    text = "GET /items/42 answered 200 in 12 ms"

    assert scrub_text(text) == text


def test_standard_library_loggers_go_through_the_same_pipeline(log_lines: LogLines) -> None:
    library = std_logging.getLogger("some.library")  # noqa: TID251 - a library's own logger
    library.warning("login for jane@example.org with ssn %s", "123-45-6789")
    try:
        raise ValueError("patient Jane Doe")
    except ValueError:
        library.exception("it failed")

    warning, error = log_lines.records()
    assert warning["event"] == "login for [EMAIL] with ssn [SSN]"
    assert warning["level"] == "warning"
    assert warning["logger"] == "some.library"
    assert warning["service"] == "demo"
    assert error["level"] == "error"
    assert error["error_type"] == "ValueError"
    assert "Jane" not in log_lines.text


def test_debug_of_the_standard_library_is_not_logged(log_lines: LogLines) -> None:
    std_logging.getLogger("some.library").debug("noise")  # noqa: TID251

    assert log_lines.records() == []
