"""`pulse`: operator commands.

pulse migrate                    bring the database schema to the latest version
pulse dlq list [--from-offset N] [--limit N]
                                 show dead letters: where each came from and why
pulse dlq replay [--from-offset N] [--limit N]
                                 publish them back to their original topic (after a fix)
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.common.logging import configure_logging
from services.common.migrate import upgrade
from services.common.settings import CommonSettings
from services.metrics.dlq import read_dead_letters, replay_dead_letters


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pulse", description="Pulse operator commands")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations (DATABASE_URL)")
    dlq = commands.add_parser("dlq", help="inspect or replay the dead-letter topic")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("--from-offset", type=int, default=0, help="per-partition start offset")
    dlq.add_argument("--limit", type=int, default=100)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = CommonSettings()
    configure_logging(settings.log_level, "cli")
    if args.command == "migrate":
        upgrade(settings)
        return
    entries = asyncio.run(read_dead_letters(settings, args.from_offset, args.limit))
    if args.action == "list":
        for e in entries:
            origin = (
                f"{e.headers.get('pulse.topic')}[{e.headers.get('pulse.partition')}]"
                f"@{e.headers.get('pulse.offset')}"
            )
            sys.stdout.write(
                f"dlq[{e.partition}]@{e.offset}  from {origin}  "
                f"reason: {e.headers.get('pulse.reason')}\n"
                f"    {e.value[:200].decode('utf-8', 'replace')}\n"
            )
        sys.stdout.write(f"{len(entries)} dead letter(s)\n")
    else:
        replayed = asyncio.run(replay_dead_letters(settings, entries))
        sys.stdout.write(f"replayed {replayed} dead letter(s) to their original topics\n")
