"""Server-rendered pages of the sign-in flow: Jinja2 with autoescaping, a strict CSP each.

A page loads nothing from another host and runs no script; its one style sheet is inline and
allowed by its hash. Its forms may post only to this service, and the redirects that follow a
form may lead only to the app's registered redirect URI (``form-action``)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse

_TEMPLATES = files("medmesh.auth.authorize") / "templates"
_ENV = Environment(
    loader=FileSystemLoader(str(_TEMPLATES)),
    autoescape=select_autoescape(["html"], default=True),
    auto_reload=False,
)
_STYLE = (_TEMPLATES / "style.css").read_text(encoding="utf-8")
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()


def form_text(form: FormData, name: str) -> str | None:
    """A text field of a posted form (None when missing or a file)."""
    value = form.get(name)
    return value if isinstance(value, str) else None


def origin_of(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def page_csp(form_targets: Sequence[str] = ()) -> str:
    """The policy of a sign-in page: nothing but its own inline style; forms post to this
    service and their redirects may reach ``form_targets`` (origins) only."""
    targets = " ".join(["'self'", *dict.fromkeys(form_targets)])
    return (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self'; "
        f"form-action {targets}; base-uri 'none'; frame-ancestors 'none'"
    )


def render(
    template: str,
    *,
    status: int = 200,
    form_targets: Sequence[str] = (),
    **context: Any,
) -> HTMLResponse:
    """The page, with its CSP, ``no-store`` and no referrer (the URL may carry a ``state``)."""
    html = _ENV.get_template(template).render(style=Markup(_STYLE), **context)  # noqa: S704 - our own file
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Content-Security-Policy": page_csp(form_targets),
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
        },
    )
