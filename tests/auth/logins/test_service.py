"""Login protection: growing delays, temporary lockout per account and per source IP."""

from __future__ import annotations

from medmesh.auth.bootstrap import CLI_CLIENT_ID
from tests.auth.conftest import AuthFactory, AuthHarness, FakeClock


async def _fail(auth: AuthHarness, username: str = "admin") -> tuple[str, str | None]:
    response = await auth.login(username, "wrong password")
    assert response.status_code == 400, response.text
    return response.json()["error_description"], response.headers.get("retry-after")


async def test_growing_delays_then_lockout(auth: AuthHarness, clock: FakeClock) -> None:
    for _ in range(3):
        description, retry = await _fail(auth)
        assert retry is None
        assert "invalid username or password" in description
    # The third failure imposes a 1 s delay; during it even the right password is refused.
    throttled = await auth.login()
    assert throttled.status_code == 400
    assert throttled.json()["error"] == "invalid_grant"
    assert throttled.headers["retry-after"] == "1"
    delays = []
    for _ in range(7):
        clock.advance(61)
        await _fail(auth)
        delays.append(int((await auth.login()).headers["retry-after"]))
    # Delays double up to login_max_delay_seconds; the 10th failure locks for lockout_seconds.
    assert delays == [2, 4, 8, 16, 32, 60, 900]
    clock.advance(899)
    assert (await auth.login()).status_code == 400
    clock.advance(2)
    assert (await auth.login()).status_code == 200  # no permanent lockout
    # Success cleared the counter: a new failure starts from scratch.
    assert (await _fail(auth))[1] is None
    assert (await auth.login()).status_code == 200
    metrics = (await auth.http.get("/metrics")).text
    assert 'medmesh_auth_login_failures_total{reason="throttled"}' in metrics
    failures = [
        e for e in await auth.audit_events(action="auth.login") if e["outcome"] == "failure"
    ]
    assert {e["details"]["reason"] for e in failures} == {"bad_credentials", "throttled"}


async def test_unknown_usernames_are_throttled_the_same(
    auth: AuthHarness, clock: FakeClock
) -> None:
    for _ in range(3):
        assert (await _fail(auth, "no.such.user"))[1] is None
    response = await auth.login("no.such.user", "anything")
    assert response.headers["retry-after"] == "1"
    assert "too many failed" in response.json()["error_description"]
    # Another account from the same source is not affected.
    assert (await auth.login()).status_code == 200


async def test_admin_unlock(auth: AuthHarness, clock: FakeClock) -> None:
    user = await auth.create_user("locked.out", roles=["auditor"])
    admin = await auth.admin_headers()
    for _ in range(3):
        await _fail(auth, "locked.out")
    assert (await auth.login("locked.out", "a long enough password")).status_code == 400
    unlocked = await auth.http.post(f"/admin/users/{user['id']}/unlock", headers=admin)
    assert unlocked.status_code == 204
    assert (await auth.login("locked.out", "a long enough password")).status_code == 200
    events = await auth.audit_events(action="auth.user_unlocked")
    assert events[-1]["resource_id"] == user["id"]


async def test_lockout_per_source_ip(auth_factory: AuthFactory, clock: FakeClock) -> None:
    async with auth_factory(ip_lockout_after_failures=5, login_delay_after_failures=100) as auth:
        for i in range(5):
            await _fail(auth, f"spray.{i}")
        response = await auth.login()
        assert response.status_code == 400
        assert response.headers["retry-after"] == str(auth.settings.login_lockout_seconds)
        secrets = auth.secrets
    async with auth_factory(client_ip="198.51.100.99", known_secrets=secrets) as other:
        assert (await other.login()).status_code == 200


async def test_default_argon2_parameters(auth_factory: AuthFactory) -> None:
    async with auth_factory(
        argon2_memory_kib=19_456, argon2_time_cost=2, argon2_parallelism=1
    ) as auth:
        await auth.create_user("owasp.user", roles=["auditor"])
        async with auth.database.engine.connect() as conn:
            from sqlalchemy import text

            stored = (
                await conn.execute(
                    text("SELECT password_hash FROM users WHERE username = 'owasp.user'")
                )
            ).scalar_one()
        assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert "a long enough password" not in stored


async def test_rehash_on_login_when_parameters_change(auth_factory: AuthFactory) -> None:
    from sqlalchemy import text

    query = text("SELECT password_hash FROM users WHERE username = 'admin'")
    async with auth_factory() as light:
        async with light.database.engine.connect() as conn:
            before = (await conn.execute(query)).scalar_one()
        secrets = light.secrets
    assert "$m=1024,t=1,p=1$" in before
    async with auth_factory(
        argon2_memory_kib=2048, argon2_time_cost=2, known_secrets=secrets
    ) as heavier:
        assert (await heavier.login(client_id=CLI_CLIENT_ID)).status_code == 200
        async with heavier.database.engine.connect() as conn:
            after = (await conn.execute(query)).scalar_one()
        assert "$m=2048,t=2,p=1$" in after
        assert (await heavier.login()).status_code == 200
