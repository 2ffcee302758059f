"""`pulse-metrics`: the metrics service, configured only by the environment."""

from __future__ import annotations

import sys

from services.common.logging import configure_logging
from services.common.serve import serve
from services.common.settings import MetricsSettings
from services.metrics.app import create_app
from services.metrics.gc_tuning import tune_gc


def main() -> None:
    settings = MetricsSettings()
    configure_logging(settings.log_level, "metrics")
    tune_gc()
    app = create_app(settings)
    serve(app, settings, settings.port)
    if app.state.consumer_failed:
        sys.exit(1)
