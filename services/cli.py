"""`pulse`: operator commands. `pulse migrate` brings the database schema to the latest version."""

from __future__ import annotations

import argparse

from services.common.logging import configure_logging
from services.common.migrate import upgrade
from services.common.settings import CommonSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pulse", description="Pulse operator commands")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations (DATABASE_URL)")
    args = parser.parse_args(argv)
    settings = CommonSettings()
    configure_logging(settings.log_level, "cli")
    if args.command == "migrate":
        upgrade(settings)
