"""Configuration read once per process, kept while the configuration stamp stays the same.

Opening an incident classified reads the SLA policy of its priority and domain (with its targets, calendar
and escalation policy), the team's escalation policy and its steps, whether the team auto-assigns, and which
events webhooks hear. That changes rarely and is the same for every incident of an integration, so a
caller that has read the stamp (escalation.models.ConfigStamp, changed by database triggers on every write of
those tables) in a statement it makes anyway runs inside `using(token)`, and `cached(key, load)` gives what
was loaded under that token, loading it once.

Why it cannot go stale: the stamp is a row written in the writer's transaction, so a reader sees the new
token no earlier than the new configuration (under READ COMMITTED it may see the old token with the new
configuration, and is corrected at its next read); a rolled-back write leaves the old token, and a token
is random, so nothing cached under a token of a rolled-back write is ever taken again. Outside `using`
(every other path), or when the stamp row is missing, `cached` just loads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from django.db.models.expressions import RawSQL

from incidents import hooks

from .models import ConfigStamp

T = TypeVar("T")
_token: ContextVar[int | None] = ContextVar("config_token", default=None)
_lock = threading.Lock()
_cache: tuple[int | None, dict[Hashable, Any]] = (None, {})
_STAMP_SQL = f"SELECT token FROM {ConfigStamp._meta.db_table} WHERE id = 1"  # noqa: S608 (no value in it)


def stamp() -> RawSQL:
    """The current token, as an expression to annotate onto a query the caller makes anyway (raw SQL: a
    compiled subquery would cost the hit path, which never needs it, a quarter of its lookup's CPU)."""
    return RawSQL(_STAMP_SQL, ())  # noqa: S611 (no value in it: the table name comes from _meta)


@contextmanager
def using(token: int | None) -> Iterator[None]:
    """Within the block, `cached` keeps what it loads under `token` (the stamp read in this transaction)."""
    reset = _token.set(token)
    try:
        yield
    finally:
        _token.reset(reset)


def active() -> bool:
    """Whether a caller read the stamp (`using`): only then is it worth asking `cached` rather than reading."""
    return _token.get() is not None


def cached(key: Hashable, load: Callable[[], T]) -> T:
    """What `load()` returns, loaded once per token. Values are shared between threads: never change them."""
    global _cache
    token = _token.get()
    if token is None:
        return load()
    held_token, values = _cache
    if held_token == token and key in values:
        return values[key]
    value = load()
    with _lock:
        held_token, values = _cache
        if held_token != token:
            values = {}
            _cache = (token, values)
        values[key] = value
    return value


def connect() -> None:
    """Let `incidents` read the stamp in its own statements and announce under it (incidents.hooks)."""
    hooks.provide_config_stamp(hooks.ConfigStamp(sql=_STAMP_SQL, using=using))


def clear() -> None:
    """Forget everything (tests that roll back the stamp's table with everything else)."""
    global _cache
    with _lock:
        _cache = (None, {})
