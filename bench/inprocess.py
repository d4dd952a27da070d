"""What the in-process profilers (bench/profile_*.py) share: their database arguments, and the environment of
the bench's gunicorn (config.settings.local with DEBUG off, the broker in memory) for Django in this process."""

from __future__ import annotations

import argparse
import os

SERVER = os.environ.get("BENCH_SERVER", "postgres://postgres@127.0.0.1:5432")


def add_database_arguments(parser: argparse.ArgumentParser, *, database: str) -> None:
    """`--server` (the PostgreSQL server's URL without a database) and `--database` (its name)."""
    parser.add_argument("--server", default=SERVER)
    parser.add_argument("--database", default=database)


def use_settings(args: argparse.Namespace, **extra: str) -> None:
    """Set the environment Django reads at setup: the bench server's settings on `--server`/`--database`,
    then `extra` (throttles lifted, the ceiling views on, a log level ...)."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DEBUG": "0",
            "DATABASE_URL": f"{args.server}/{args.database}",
            "ALLOWED_HOSTS": "testserver",
            "CELERY_BROKER_URL": "memory://",
            **extra,
        }
    )
