"""Configuration from the environment, one class per service on shared bases (SPEC §2)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_ADMIN_TOKEN = "pulse-dev-admin-token"


class CommonSettings(BaseSettings):
    """What every service needs: where Kafka and PostgreSQL are, how to log."""

    model_config = SettingsConfigDict(env_prefix="PULSE_", extra="ignore")

    env: str = Field("development", description="`production` refuses development defaults")
    bind_host: str = "127.0.0.1"
    log_level: str = "info"
    database_url: str = Field(
        "postgresql://pulse@127.0.0.1:5432/pulse", validation_alias="DATABASE_URL"
    )
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", validation_alias="KAFKA_BOOTSTRAP_SERVERS"
    )
    events_topic: str = "events"
    rejected_topic: str = "events.rejected"
    dlq_topic: str = "events.dlq"
    events_partitions: int = 6
    consumer_group: str = "pulse-metrics"
    # Event properties / traits (comma-separated) every project's activity and retention can be
    # broken down by; a project tracks more of its own (POST /v1/breakdowns).
    breakdown_keys: str = "plan"

    @property
    def breakdown_key_list(self) -> list[str]:
        return [k.strip() for k in self.breakdown_keys.split(",") if k.strip()]

    project_cache_seconds: float = 2.0
    # On SIGTERM, answer /readyz with 503 and go on serving this long before closing the port,
    # so that a load balancer polling readiness stops sending first (services/common/serve.py).
    drain_seconds: float = Field(
        5.0, ge=0, le=60, description="on SIGTERM, keep serving (readyz 503) this long"
    )

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL is a plain libpq URL; SQLAlchemy needs the async driver named."""
        scheme, _, rest = self.database_url.partition("://")
        if scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
            return f"postgresql+asyncpg://{rest}"
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got scheme {scheme!r}")


class IngestSettings(CommonSettings):
    port: int = Field(8001, validation_alias="PULSE_INGEST_PORT")
    # SDKs give up after 15 s; a 503 must reach them well before (SPEC §3: within 10 s).
    produce_timeout_seconds: float = Field(
        5.0, gt=0, le=9, description="wait this long for Kafka's acknowledgement, then 503"
    )
    max_event_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    max_batch_events: int = 2500
    max_posthog_batch_bytes: int = 5 * 1024 * 1024
    max_future_seconds: float = Field(
        86_400, ge=0, description="events stamped further ahead than this are rejected"
    )
    quota_events_per_second: float = Field(
        10_000, ge=0, description="per write key and ingest process; 0 turns the quota off"
    )
    quota_burst_events: float = Field(
        20_000, ge=0, description="events a write key may send at once above the steady rate"
    )
    # Parsed, a body takes about ten times its bytes (services/ingest/body_budget.py).
    max_body_bytes_in_flight: int = Field(
        64 * 1024 * 1024,
        ge=1,
        description="request body bytes (inflated) the process holds at once; past it, 503",
    )


class MetricsSettings(CommonSettings):
    port: int = Field(8003, validation_alias="PULSE_METRICS_PORT")
    # Only a backlog fills a batch (at a steady rate the time bounds close it first), and there
    # the size is throughput: a person's events in one batch cost one read of their tail, one
    # late replay and one edge write instead of one each. 50,000 (ClickHouse's Kafka engine
    # takes 65,536) more than doubled `metrics_apply` against 5,000, for about 200 MB more at peak.
    batch_max_events: int = Field(50_000, ge=1)
    batch_max_seconds: float = 0.2
    # A caught-up consumer applies a batch once its oldest record waited this long (runner.py).
    batch_min_seconds: float = Field(0.05, ge=0)
    dedup_days: int = Field(7, ge=1, description="remember (project, messageId) this long")
    database_retry_seconds: float = Field(
        60.0,
        ge=0,
        description="retry a batch or a claim this long while PostgreSQL is unreachable, then exit",
    )
    dedup_prune_seconds: float = 600.0


class GatewaySettings(CommonSettings):
    port: int = Field(8002, validation_alias="PULSE_GATEWAY_PORT")
    admin_token: str = DEV_ADMIN_TOKEN
    kpi_refresh_seconds: float = Field(
        10.0, gt=0, description="how often the product KPI gauges are recomputed"
    )
    read_cache_max_age_seconds: int = Field(
        5, ge=0, description="`Cache-Control: private, max-age` on read responses"
    )
    read_cache_entries: int = Field(
        2048, ge=0, description="responses kept per gateway for unchanged data; 0 disables"
    )
    read_cache_staleness_seconds: float = Field(
        0.25, ge=0, description="a reused read is at most this far behind the pipeline"
    )

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> GatewaySettings:
        if self.env == "production" and self.admin_token == DEV_ADMIN_TOKEN:
            raise ValueError("PULSE_ADMIN_TOKEN must be set to a secret in production")
        return self
