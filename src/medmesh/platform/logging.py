"""Structured JSON logs with PHI and secret redaction.

One JSON object per line: ``ts, level, service, event, request_id, trace_id,
span_id`` plus fields. :func:`redact_phi` runs last before rendering: it drops the
values of fields whose names denote PHI, card data or secrets, and scrubs values
that look like card numbers, SSNs, e-mail addresses, phone numbers or bearer
tokens wherever they appear — PHI never reaches a log line.
"""

from __future__ import annotations

import logging as std_logging
import re
import sys
import traceback
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TextIO

import orjson
import structlog
from opentelemetry import trace

request_id_var: ContextVar[str | None] = ContextVar("medmesh_request_id", default=None)

REDACTED = "[REDACTED]"

#: Field names (lower-cased, ``-`` and ``_`` removed) whose values are never logged.
SENSITIVE_KEYS = frozenset(
    k.replace("_", "").replace("-", "")
    for k in [
        "name",
        "given",
        "family",
        "prefix",
        "suffix",
        "birthdate",
        "birth_date",
        "dob",
        "address",
        "line",
        "city",
        "postalcode",
        "postal_code",
        "zip",
        "phone",
        "telecom",
        "email",
        "ssn",
        "identifier",
        "mrn",
        "text",
        "note",
        "comment",
        "description",
        "free_text",
        "password",
        "passwd",
        "new_password",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "authorization",
        "cookie",
        "set-cookie",
        "card",
        "card_number",
        "number",
        "pan",
        "cvc",
        "cvv",
        "exp_month",
        "exp_year",
        "iban",
        "username",
    ]
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[JWT]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [CREDENTIAL]"),
    (re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), "[PAN]"),
    (re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), "[SSN]"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[EMAIL]"),
    (re.compile(r"(?<!\d)(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\d)"), "[PHONE]"),
)


def scrub_text(value: str) -> str:
    """Replace card numbers, SSNs, e-mails, phone numbers and tokens in free text."""
    for pattern, replacement in _PATTERNS:
        value = pattern.sub(replacement, value)
    return value


#: Field names ending like these are sensitive too (``patient_name``, ``home_address``,
#: ``contact_email``, ``phone_number``): a compound name must not slip past the list.
SENSITIVE_SUFFIXES = (
    "name",
    "address",
    "email",
    "phone",
    "birthdate",
    "ssn",
    "password",
    "secret",
    "token",
    "identifier",
    "mrn",
    "cardnumber",
    "phonenumber",
)


def _normal_key(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def is_sensitive_key(key: str) -> bool:
    """Whether the value of a field called ``key`` is never logged."""
    normal = _normal_key(key)
    return normal in SENSITIVE_KEYS or normal.endswith(SENSITIVE_SUFFIXES)


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if is_sensitive_key(str(k)) else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [_scrub(v, depth + 1) for v in value]
    return value


_STRUCTURAL = frozenset({"ts", "level", "service", "request_id", "trace_id", "span_id", "logger"})


def redact_phi(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: remove PHI, card data and secrets from every field."""
    for key in list(event_dict):
        if key in _STRUCTURAL:
            continue
        if is_sensitive_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def _add_context(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    request_id = request_id_var.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    span = trace.get_current_span()
    ctx = span.get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict


def _render(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> str:
    return orjson.dumps(event_dict, default=str).decode()


class _Output:
    """A writable stream that can be swapped after configuration (tests capture it)."""

    def __init__(self) -> None:
        self.stream: TextIO = sys.stderr

    def msg(self, message: str) -> None:
        self.stream.write(message + "\n")
        self.stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


_OUTPUT = _Output()


class _OutputFactory:
    def __call__(self, *args: Any) -> _Output:
        return _OUTPUT


class _ServiceName:
    """Adds ``service`` to every line, whatever context (task, thread) logs it."""

    def __init__(self, service: str) -> None:
        self.service = service

    def __call__(
        self, _: Any, __: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", self.service)
        return event_dict


def configure_logging(service: str, level: str = "info", log_file: Path | None = None) -> None:
    """Configure structlog (and the standard library's root logger) for one service process."""
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        _OUTPUT.stream = log_file.open("a", encoding="utf-8")
    numeric = std_logging.getLevelNamesMapping().get(level.upper(), std_logging.INFO)
    structlog.configure(
        processors=[
            _ServiceName(service),
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            _add_context,
            structlog.processors.format_exc_info,
            redact_phi,
            _render,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_OutputFactory(),
        cache_logger_on_first_use=False,
    )
    # Libraries that use the standard library (uvicorn, sqlalchemy) go through the same pipeline.
    root = std_logging.root
    root.handlers[:] = [StdlibToStructlog()]
    root.setLevel(max(numeric, std_logging.INFO))
    for noisy in ("uvicorn.access", "httpx", "httpcore", "aiosqlite", "asyncio"):
        std_logging.root.manager.getLogger(noisy).setLevel(std_logging.WARNING)


_STD_LEVELS = (
    std_logging.DEBUG,
    std_logging.INFO,
    std_logging.WARNING,
    std_logging.ERROR,
    std_logging.CRITICAL,
)


class StdlibToStructlog(std_logging.Handler):
    """Forwards standard-library log records to structlog, keeping their level and logger.

    An attached exception is reduced to its type and frames: its message and the
    traceback's source lines may carry data (SQL parameters, PHI).
    """

    def emit(self, record: std_logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info and record.exc_info[0] is not None:
                fields["error_type"] = record.exc_info[0].__name__
                fields["frames"] = [
                    f"{frame.filename}:{frame.lineno} in {frame.name}"
                    for frame in traceback.extract_tb(record.exc_info[2])[-5:]
                ]
            # structlog knows the five standard levels only; custom ones round down to them.
            level = max(
                (std for std in _STD_LEVELS if std <= record.levelno), default=std_logging.DEBUG
            )
            structlog.get_logger(record.name).log(level, record.getMessage(), **fields)
        except Exception:
            self.handleError(record)


def set_log_stream(stream: TextIO) -> TextIO:
    """Send log lines to ``stream`` (tests capture what a service logs); return the previous one."""
    previous = _OUTPUT.stream
    _OUTPUT.stream = stream
    return previous


def get_logger(name: str | None = None) -> Any:
    """The structured logger. Use it instead of ``print`` or the standard library's loggers."""
    return structlog.get_logger(name) if name else structlog.get_logger()
