"""`pulse-gateway`: the gateway service, configured only by the environment."""

from __future__ import annotations

from services.common.logging import configure_logging
from services.common.serve import serve
from services.common.settings import GatewaySettings
from services.gateway.app import create_app


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level, "gateway")
    serve(create_app(settings), settings, settings.port)
