"""Every line a service logs is one JSON object, libraries' lines too (common/logging.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog

from services.common.logging import configure_logging, get_logger


@pytest.fixture
def restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    kafka_level = logging.getLogger("aiokafka").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(kafka_level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_library_and_service_lines_are_json_alike(
    restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", "metrics")
    get_logger(__name__).info("batch_applied", events=3)
    logging.getLogger("uvicorn.error").info("Waiting for application shutdown.")
    logging.getLogger("aiokafka.consumer").info("joined the group")  # below WARNING: dropped
    try:
        raise ConnectionError("broker went away")
    except ConnectionError:
        logging.getLogger("aiokafka.conn").exception("Unable connect to node with id %d", 1)

    lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert [(line["event"], line["level"], line["service"]) for line in lines] == [
        ("batch_applied", "info", "metrics"),
        ("Waiting for application shutdown.", "info", "metrics"),
        ("Unable connect to node with id 1", "error", "metrics"),
    ]
    assert lines[0]["events"] == 3
    assert lines[1]["logger"] == "uvicorn.error"
    assert "ConnectionError: broker went away" in lines[2]["exception"]
    assert all(line["timestamp"].endswith("Z") for line in lines)
