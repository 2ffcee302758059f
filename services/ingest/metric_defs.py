"""Every Prometheus metric the ingest service exports, in one place."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_ACCEPTED = Counter("pulse_ingest_events_accepted_total", "Events acknowledged by Kafka")
EVENTS_REJECTED = Counter(
    "pulse_ingest_events_rejected_total", "Events refused individually, by reason", ["reason"]
)
PRODUCE_SECONDS = Histogram(
    "pulse_ingest_produce_duration_seconds",
    "Time from first send to the broker acknowledging a whole request's events",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PRODUCE_FAILURES = Counter(
    "pulse_ingest_produce_failures_total", "Requests answered 503 because Kafka failed", ["error"]
)
IN_FLIGHT = Gauge("pulse_ingest_requests_in_flight", "Ingest requests being handled")
PRODUCER_RESTARTS = Counter(
    "pulse_ingest_producer_restarts_total", "Kafka producers rebuilt after their sender died"
)
QUOTA_EXCEEDED = Counter(
    "pulse_ingest_quota_exceeded_total",
    "Requests answered 429 because their write key exceeded the events/s quota",
    ["project"],
)
BODY_BYTES_IN_FLIGHT = Gauge(
    "pulse_ingest_body_bytes_in_flight",
    "Request body bytes (after gunzip) held by the requests being handled",
)
OVERLOADED = Counter(
    "pulse_ingest_overloaded_total",
    "Requests answered 503 because the bodies in flight reached PULSE_MAX_BODY_BYTES_IN_FLIGHT",
)
