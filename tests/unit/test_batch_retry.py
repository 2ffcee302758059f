"""A batch or a partition claim that finds no database is tried again, for a bounded time
(services/metrics/runner.py: Runner._retrying); any other error ends the consumer at once, also
one raised in a rebalance callback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from services.common.settings import MetricsSettings
from services.metrics import runner as runner_module
from services.metrics.parse import ParsedBatch
from services.metrics.runner import Runner


class FailingStore:
    """Store.apply raising the given errors in turn, then applying."""

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors: Iterator[BaseException] = iter(errors)
        self.applied = 0
        self.tried = 0

    async def apply(self, _batch: ParsedBatch, _claims: object) -> None:
        self.tried += 1
        error = next(self.errors, None)
        if error is not None:
            raise error
        self.applied += 1


@asynccontextmanager
async def _runner(
    monkeypatch: pytest.MonkeyPatch, errors: list[BaseException], retry_seconds: float = 60
) -> AsyncIterator[tuple[Runner, FailingStore]]:
    monkeypatch.setenv("PULSE_DATABASE_RETRY_SECONDS", str(retry_seconds))
    monkeypatch.setattr(runner_module, "RETRY_FIRST_SECONDS", 0.01)
    runner = Runner(MetricsSettings(), pool=None)  # type: ignore[arg-type]
    store = FailingStore(errors)
    runner._store = store  # type: ignore[assignment]
    try:
        yield runner, store
    finally:  # never started; closed all the same
        await runner._consumer.stop()
        await runner._producer.stop()


async def test_a_batch_is_applied_once_the_database_answers_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    starting = asyncpg.CannotConnectNowError("the database system is starting up")
    async with _runner(monkeypatch, [refused, starting]) as (runner, store):
        await runner._apply(ParsedBatch())
        assert (store.tried, store.applied) == (3, 1)


async def test_any_other_error_ends_the_consumer_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    errors: list[BaseException] = [asyncpg.PostgresSyntaxError("syntax error")]
    async with _runner(monkeypatch, errors) as (runner, store):
        with pytest.raises(asyncpg.PostgresSyntaxError):
            await runner._apply(ParsedBatch())
        assert (store.tried, store.applied) == (1, 0)


async def test_a_database_gone_for_longer_than_the_retry_time_ends_the_consumer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refusals: list[BaseException] = [ConnectionRefusedError(111, "refused")] * 100
    async with _runner(monkeypatch, refusals, retry_seconds=0.1) as (runner, store):
        with pytest.raises(ConnectionRefusedError):
            await runner._apply(ParsedBatch())
        # waits of 0.01, 0.02, 0.04 s ..., until the next one would end past 0.1 s
        assert 2 <= store.tried < 10
        assert store.applied == 0


async def test_a_graceful_stop_does_not_wait_for_the_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refusals: list[BaseException] = [ConnectionRefusedError(111, "refused")] * 100
    async with _runner(monkeypatch, refusals) as (runner, store):
        runner.stop()
        with pytest.raises(ConnectionRefusedError):
            await runner._apply(ParsedBatch())
        assert store.tried == 1


async def test_a_stop_cuts_the_wait_short_for_one_last_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refusals: list[BaseException] = [ConnectionRefusedError(111, "refused")] * 100
    async with _runner(monkeypatch, refusals) as (runner, store):
        monkeypatch.setattr(runner_module, "RETRY_FIRST_SECONDS", 30)
        applying = asyncio.create_task(runner._apply(ParsedBatch()))
        await asyncio.sleep(0.05)
        assert store.tried == 1
        runner.stop()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(applying, 2)  # not the 30 s wait
        assert (store.tried, store.applied) == (2, 0)


async def test_a_partition_claim_is_tried_again_too(monkeypatch: pytest.MonkeyPatch) -> None:
    tries: list[list[tuple[str, int]]] = []

    async def claim(_pool: object, _group: str, keys: list[tuple[str, int]]) -> dict[str, object]:
        tries.append(keys)
        if len(tries) == 1:
            raise ConnectionRefusedError(111, "refused")
        return {}

    monkeypatch.setattr(runner_module, "claim_partitions", claim)
    async with _runner(monkeypatch, []) as (runner, _):
        await runner.on_assigned(set())
    assert tries == [[], []]


async def test_a_failed_rebalance_callback_is_handed_to_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiokafka only logs a callback's error; the runner's loop raises it instead."""
    failure = asyncpg.PostgresSyntaxError("a claim that cannot succeed")

    async def failing(_assigned: object) -> None:
        raise failure

    async with _runner(monkeypatch, []) as (runner, _):
        monkeypatch.setattr(runner, "on_assigned", failing)
        await runner_module.RebalanceListener(runner).on_partitions_assigned(set())
        assert runner._failure is failure
