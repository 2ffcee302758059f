"""structlog configured for one JSON object per line on stdout, with context vars merged in."""

from __future__ import annotations

import logging
import sys

import orjson
import structlog


def configure_logging(level: str = "info", service: str = "pulse") -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    render = structlog.processors.JSONRenderer(serializer=lambda o, **_: orjson.dumps(o).decode())
    stamped: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Libraries log through the standard library (uvicorn, aiokafka): their records become the
    # same JSON lines, with the logger's name, so a log shipper parses every line alike.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*stamped, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                render,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # aiokafka's INFO lines (every group join, every metadata change) are noise; its warnings
    # and errors (a broker that went away) stay.
    logging.getLogger("aiokafka").setLevel(max(numeric, logging.WARNING))
    structlog.configure(
        processors=[*stamped, structlog.processors.format_exc_info, render],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
