from pathlib import Path
from typing import ClassVar

import pytest
from pydantic_settings import SettingsConfigDict

from medmesh.platform.config import ServiceSettings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_DEMO_", extra="ignore")
    service_name: ClassVar[str] = "demo"


class PhiSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_PHI_", extra="ignore")
    service_name: ClassVar[str] = "phi"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "DATABASE_URL", "PORT", "VAR_DIR", "ISSUER", "JWKS_URL"):
        for prefix in ("MEDMESH_", "MEDMESH_DEMO_", "MEDMESH_PHI_"):
            monkeypatch.delenv(prefix + name, raising=False)


def test_service_variable_overrides_shared_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDMESH_REDIS_URL", "redis://shared:6379/0")
    monkeypatch.setenv("MEDMESH_DEMO_REDIS_URL", "redis://demo-only:6379/1")

    assert DemoSettings().redis_url == "redis://demo-only:6379/1"
    # another service still sees the shared value
    assert PhiSettings().redis_url == "redis://shared:6379/0"


def test_shared_variable_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDMESH_MAX_BODY_BYTES", "2048")

    assert DemoSettings().max_body_bytes == 2048
    assert PhiSettings().max_body_bytes == 2048


def test_explicit_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDMESH_DEMO_PORT", "9100")

    assert DemoSettings(port=9200).effective_port == 9200


def test_defaults() -> None:
    settings = PhiSettings(var_dir=Path("/tmp/medmesh-var"))

    assert settings.effective_database_url == "sqlite+medmesh:////tmp/medmesh-var/phi.db"
    assert settings.effective_port == 8002
    assert settings.audience == "medmesh-phi"
    assert settings.effective_jwks_url == "http://127.0.0.1:8001/.well-known/jwks.json"
    assert settings.redis_url == ""
    assert settings.otlp_endpoint == ""


def test_unknown_service_gets_a_generic_port() -> None:
    assert DemoSettings().effective_port == 8000


def test_derived_values_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDMESH_ISSUER", "https://auth.example.org/")
    monkeypatch.setenv("MEDMESH_PHI_VAR_DIR", "/srv/phi")
    monkeypatch.setenv("MEDMESH_PHI_PORT", "18002")

    settings = PhiSettings()

    assert settings.effective_jwks_url == "https://auth.example.org/.well-known/jwks.json"
    assert settings.effective_database_url == "sqlite+medmesh:////srv/phi/phi.db"
    assert settings.effective_port == 18002


def test_explicit_database_and_jwks_urls_are_used_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDMESH_PHI_DATABASE_URL", "postgresql+asyncpg://db/phi")
    monkeypatch.setenv("MEDMESH_JWKS_URL", "http://auth:8001/keys")

    settings = PhiSettings()

    assert settings.effective_database_url == "postgresql+asyncpg://db/phi"
    assert settings.effective_jwks_url == "http://auth:8001/keys"


def test_invalid_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDMESH_DEMO_MAX_BODY_BYTES", "a lot")

    with pytest.raises(ValueError, match="max_body_bytes"):
        DemoSettings()
