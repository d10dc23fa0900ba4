"""Property-based requests generated from payment-gateway's OpenAPI document never get a 5xx.

schemathesis reads ``/openapi.json`` of a running gateway process (HS256 tokens, SQLite in a
temporary folder) and sends generated requests to every operation with a token that may do
everything (``payments:admin``), so that the requests reach the handlers.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from medmesh.platform.testing import TokenFactory
from medmesh.platform.tokens import SigningKey
from tests.e2e.test_phi_process import MEDMESH, _wait_ready, free_port

pytestmark = pytest.mark.e2e

SECRET = "payments-schemathesis-hs256-secret-of-32-bytes"
ISSUER = "http://auth.schemathesis.test"


@pytest.fixture(scope="module")
def payments_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var_dir: Path = tmp_path_factory.mktemp("payments-schemathesis")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDMESH_")}  # noqa: TID251
    env.update(
        {
            "MEDMESH_PAYMENTS_VAR_DIR": str(var_dir),
            "MEDMESH_PAYMENTS_ISSUER": ISSUER,
            "MEDMESH_PAYMENTS_JWT_HS256_SECRET": SECRET,
            "MEDMESH_PAYMENTS_REVOCATION_POLL_SECONDS": "0",  # no auth-service publishes revocations
            "MEDMESH_PAYMENTS_DRAIN_SECONDS": "0",
            "MEDMESH_PAYMENTS_LOG_FILE": str(var_dir / "payments.log"),
        }
    )
    url = f"http://127.0.0.1:{free_port()}"
    command = [*MEDMESH, "serve", "payments", "--port", url.rsplit(":", 1)[1], "--migrate"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_ready(url, process, var_dir / "payments.log")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def token() -> str:
    tokens = TokenFactory(ISSUER)
    tokens.key = SigningKey.hs256(SECRET)
    value: str = tokens.token("payments:admin", audience="medmesh-payments", lifetime=3600)
    return value


def test_no_generated_request_gets_a_server_error(payments_url: str, token: str) -> None:
    # Each operation's strategy is driven by hypothesis directly (schemathesis' pytest plugin
    # does not support this pytest version).
    schema = schemathesis.openapi.from_url(payments_url + "/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    statuses: list[int] = []
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(base_url=payments_url, headers=headers)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:300]}"
                )

        run()
    assert failures == []
    assert len(statuses) >= 5 * len(operations)
    # Generated requests do reach the handlers, not only the validation in front of them.
    assert any(200 <= status < 300 for status in statuses)
