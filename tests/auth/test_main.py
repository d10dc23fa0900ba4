"""The app as operators see it: health, metrics and logs."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from medmesh.auth.bootstrap import CLI_CLIENT_ID, DEMO_SERVICE_CLIENT_ID
from medmesh.platform.logging import set_log_stream
from tests.auth.conftest import ADMIN_PASSWORD, AuthFactory, AuthHarness, bearer


async def test_health_and_readiness(auth: AuthHarness) -> None:
    assert (await auth.http.get("/healthz")).json() == {"status": "ok"}
    assert (await auth.http.get("/readyz")).json() == {"status": "ready"}


async def test_metrics_parse_and_carry_red_and_domain_metrics(auth: AuthHarness) -> None:
    await auth.token()
    await auth.login()
    await auth.login(password="wrong password")
    await auth.http.post(
        "/oauth/introspect", data={"token": "x"}, headers=auth.basic(DEMO_SERVICE_CLIENT_ID)
    )
    response = await auth.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}

    requests = families["medmesh_http_requests"]
    token_samples = [
        s
        for s in requests.samples
        if s.name == "medmesh_http_requests_total" and s.labels["route"] == "/oauth/token"
    ]
    by_status = {s.labels["status"]: s.value for s in token_samples}
    assert by_status == {"200": 2.0, "400": 1.0}
    assert all(
        s.labels["service"] == "auth" and s.labels["method"] == "POST" for s in token_samples
    )
    routes = {s.labels["route"] for s in requests.samples}
    assert "/oauth/introspect" in routes
    assert all("{" in r for r in routes if r.startswith("/admin/users/"))
    assert "medmesh_http_request_duration_seconds" in families
    assert "medmesh_http_response_size_bytes" in families

    issued = {
        s.labels["grant_type"]: s.value
        for s in families["medmesh_auth_tokens_issued"].samples
        if s.name.endswith("_total")
    }
    assert issued["client_credentials"] == 1.0
    assert issued["password"] == 1.0
    failures = {
        s.labels["reason"]: s.value
        for s in families["medmesh_auth_login_failures"].samples
        if s.name.endswith("_total")
    }
    assert failures["bad_credentials"] == 1.0
    assert "medmesh_auth_signing_key_age_seconds" in families
    # The rotation alert compares the key's age with this (MEDMESH_AUTH_KEY_ROTATION_DAYS, 90).
    (due,) = families["medmesh_auth_signing_key_rotation_after_seconds"].samples
    assert due.value == 90 * 86400


async def test_metrics_label_templates_not_raw_paths(auth: AuthHarness) -> None:
    admin = await auth.admin_headers()
    await auth.http.get("/admin/users/some-secret-looking-id", headers=admin)
    await auth.http.get("/no/such/path/p-123")
    text = (await auth.http.get("/metrics")).text
    assert 'route="/admin/users/{user_id}"' in text
    assert "some-secret-looking-id" not in text
    assert "p-123" not in text


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    set_log_stream(stream)
    yield stream
    set_log_stream(sys.stderr)


async def test_logs_are_json_and_never_carry_secrets(
    auth_factory: AuthFactory, log_stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with auth_factory(raise_app_exceptions=False, log_level="debug") as auth:
        # Capture what the running service logs (the harness's own migration lines are not its).
        log_stream.seek(0)
        log_stream.truncate()
        client_secret = auth.secrets[CLI_CLIENT_ID]
        session = (await auth.login(scope="openid auth:admin")).json()
        access, refresh = session["access_token"], session["refresh_token"]
        await auth.login(password="a-wrong-password-9431")
        await auth.http.post(
            "/oauth/token",
            data={
                "grant_type": "password",
                "username": "admin",
                "password": ADMIN_PASSWORD,
                "client_id": CLI_CLIENT_ID,
                "client_secret": client_secret,
            },
        )
        await auth.refresh(refresh)
        await auth.refresh(refresh)  # reuse
        await auth.http.get("/admin/users", headers=bearer(access))
        await auth.http.get("/admin/users", headers=bearer(access + "x"))
        await auth.http.post(
            "/admin/users",
            json={"username": "new.user", "password": "p" * 3},
            headers=bearer(access),
        )

        async def explode(*args: object, **kwargs: object) -> None:
            raise RuntimeError(f"database said no for {args[2]!r}")

        monkeypatch.setattr(auth.app.state.auth.users, "verify_password", explode)
        crashed = await auth.login(password="crash-password-5517")
        assert crashed.status_code == 500
        assert crashed.json() == {"error": "internal_error", "error_description": "internal error"}

    lines = [line for line in log_stream.getvalue().splitlines() if line.strip()]
    assert lines
    records = [orjson.loads(line) for line in lines]
    for record in records:
        assert {"ts", "level", "service", "event"} <= set(record), record
        assert record["service"] == "auth"
    assert any(r["event"] == "unhandled_error" for r in records)
    assert any("trace_id" in r and "request_id" in r for r in records)
    text = log_stream.getvalue()
    for secret in (
        ADMIN_PASSWORD,
        "a-wrong-password-9431",
        "crash-password-5517",
        client_secret,
        access,
        refresh,
        access.split(".")[2],
    ):
        assert secret not in text
