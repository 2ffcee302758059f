"""A metrics replica stops reporting the lag of partitions it no longer owns
(services/metrics/runner.py: Runner.on_revoked): summed over replicas, a stale value would be a
backlog that is not there."""

from __future__ import annotations

from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from services.common.settings import MetricsSettings
from services.metrics.runner import Runner


def _lag(topic: str, partition: int) -> float | None:
    labels = {"topic": topic, "partition": str(partition)}
    return REGISTRY.get_sample_value("pulse_consumer_lag_events", labels)


async def test_revoked_partitions_leave_the_lag_gauge_and_kept_ones_stay() -> None:
    runner = Runner(MetricsSettings(), pool=None)  # type: ignore[arg-type]
    try:
        kept, lost = TopicPartition("lag-test", 0), TopicPartition("lag-test", 1)
        for tp in (kept, lost):
            runner._applied[(tp.topic, tp.partition)] = 10
            runner._expected[(tp.topic, tp.partition)] = 10
        runner._consumer.highwater = lambda tp: 25  # type: ignore[method-assign]
        runner._consumer.assignment = lambda: {kept, lost}  # type: ignore[method-assign]
        runner._report_lag()
        assert (_lag("lag-test", 0), _lag("lag-test", 1)) == (15, 15)

        await runner.on_revoked({lost})  # nothing pending: no flush reaches the database
        runner._consumer.assignment = lambda: {kept}  # type: ignore[method-assign]
        runner._report_lag()
        assert (_lag("lag-test", 0), _lag("lag-test", 1)) == (15, None)
    finally:  # never started; closed all the same
        await runner._consumer.stop()
        await runner._producer.stop()
