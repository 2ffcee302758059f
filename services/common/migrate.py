"""Schema migrations, run by `pulse migrate`, the local launcher, the tests and compose."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from services.common.settings import CommonSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(settings: CommonSettings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", settings.sqlalchemy_url.replace("%", "%%"))
    return config


def upgrade(settings: CommonSettings) -> None:
    command.upgrade(alembic_config(settings), "head")
