"""Settings: env names of SPEC §2 and no development secrets in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.settings import GatewaySettings, IngestSettings, MetricsSettings


def test_spec_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_INGEST_PORT", "9101")
    monkeypatch.setenv("PULSE_GATEWAY_PORT", "9102")
    monkeypatch.setenv("PULSE_METRICS_PORT", "9103")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/x")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:9092")
    monkeypatch.setenv("PULSE_DEDUP_DAYS", "9")
    assert IngestSettings().port == 9101
    assert GatewaySettings().port == 9102
    metrics = MetricsSettings()
    assert metrics.port == 9103
    assert metrics.dedup_days == 9
    assert metrics.kafka_bootstrap_servers == "k:9092"
    assert metrics.sqlalchemy_url == "postgresql+asyncpg://u:p@db:5432/x"


def test_production_refuses_the_dev_admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_ENV", "production")
    monkeypatch.delenv("PULSE_ADMIN_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="PULSE_ADMIN_TOKEN"):
        GatewaySettings()
    monkeypatch.setenv("PULSE_ADMIN_TOKEN", "a-real-secret")
    assert GatewaySettings().admin_token == "a-real-secret"


def test_database_url_must_be_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    with pytest.raises(ValueError, match="postgresql"):
        _ = IngestSettings().sqlalchemy_url
