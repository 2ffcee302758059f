"""Every Prometheus metric the metrics service exports, in one place."""

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

EVENTS_APPLIED = Counter("pulse_metrics_events_applied_total", "New events applied to aggregates")
EVENTS_DEDUPLICATED = Counter(
    "pulse_metrics_events_deduplicated_total", "Events dropped as already-seen (project, messageId)"
)
REJECTED_STORED = Counter("pulse_metrics_rejected_stored_total", "Rejected events stored")
RECORDS_REDELIVERED = Counter(
    "pulse_metrics_records_redelivered_total",
    "Records fetched again after a rebalance and skipped because they were already held",
)
DEAD_LETTERS = Counter(
    "pulse_metrics_dead_letters_total", "Records that could not be read, sent to the DLQ topic"
)
DATABASE_RETRIES = Counter(
    "pulse_metrics_database_retries_total",
    "Batches and partition claims tried again because PostgreSQL could not be reached",
)
BATCH_APPLY_SECONDS = Histogram(
    "pulse_metrics_batch_apply_duration_seconds",
    "One batch's PostgreSQL transaction (aggregates + offsets)",
    buckets=LATENCY_BUCKETS,
)
BATCH_EVENTS = Histogram(
    "pulse_metrics_batch_size_events",
    "Records per applied batch",
    buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000),
)
END_TO_END_SECONDS = Histogram(
    "pulse_metrics_end_to_end_latency_seconds",
    "receivedAt at ingest -> visible in PostgreSQL",
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "pulse_consumer_lag_events", "Records in Kafka not yet applied", ["topic", "partition"]
)
WALKED_PERSONS = Counter(
    "pulse_metrics_walked_persons_total",
    "Persons redone by background walks (funnel and breakdown backfills, sessions rebuilds)",
    ["job"],
)
