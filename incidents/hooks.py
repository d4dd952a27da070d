"""What the incident lifecycle announces, and what the apps above it provide.

`incidents` imports nothing from the apps above it (see the import contract in pyproject.toml). They hang
off it instead, registering in their `AppConfig.ready()`:

- **Lifecycle hooks** (`connect`, `announce`): after each change the lifecycle announces what happened
  (`classified`, `acknowledged`, ...). Receivers run synchronously, inside the lifecycle's transaction and
  under the incident's row lock: a receiver that raises rolls the change back with it. They must therefore
  be quick, safe to repeat, and queue any slow work after commit.
- **The outbox** (`provide_outbox`, `outbox`): mail that `incidents` decides (to a reporter, to a follow-up
  owner, to a team about a proposed problem) is written to the escalation app's outbox in the deciding
  transaction. `incidents` writes the content; the outbox stores, keys and delivers it.
- **Team page context** (`connect_team_page`, `team_page_context`): extra context for a team's page (who
  is on call), from the app that knows it.
- **The configuration stamp** (`provide_config_stamp`, `config_stamp_sql`, `configuration`): the receivers
  read configuration (which webhooks hear of what) that the escalation app keeps under a stamp. A path of
  `incidents` that reads the stamp in a statement it makes anyway (the API's token lookup) announces inside
  `configuration(token)`, and the receivers take what they read under that token instead of reading it again.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from .models import Incident, Team


class Event(StrEnum):
    """What the lifecycle announces, with the keyword arguments each announcement carries."""

    CLASSIFIED = "classified"  # now, first (the first classification)
    ACKNOWLEDGED = "acknowledged"  # now
    ESCALATED = "escalated"  # now, by_policy, reason
    HELD = "held"  # now, reason
    RESUMED = "resumed"  # now
    RESOLVED = "resolved"  # now
    REOPENED = "reopened"  # now
    CLOSED = "closed"  # now
    CANCELLED = "cancelled"  # now
    PUBLIC_REPLY = "public_reply"  # now (a responder's first public reply: the first response)
    CREATED = "created"  # now (reported)
    OPENING = "opening"  # now (opened classified, announced before its row is written: receivers may set
    # the fields they derive on the unsaved incident; `classified` follows with fresh=True once it is written)
    PUBLIC_COMMENT = "public_comment"  # now, comment (any public comment, the reporter's too)


Receiver = Callable[..., None]
_receivers: dict[Event, list[Receiver]] = {event: [] for event in Event}


def connect(event: Event | str, receiver: Receiver) -> None:
    """Run `receiver(incident, **kwargs)` whenever the lifecycle announces `event`. Connecting the same
    receiver twice (a second `ready()`) keeps one."""
    receivers = _receivers[Event(event)]
    if receiver not in receivers:
        receivers.append(receiver)


def disconnect(event: Event | str, receiver: Receiver) -> None:
    receivers = _receivers[Event(event)]
    if receiver in receivers:
        receivers.remove(receiver)


def receivers(event: Event | str) -> list[Receiver]:
    return list(_receivers[Event(event)])


def announce(event: Event, incident: Incident, **kwargs: Any) -> None:
    """Tell every receiver of `event`, in the order they connected. Call it inside the transaction of the
    change, after the row was written: a receiver's exception propagates and undoes the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"Lifecycle event {event} announced outside a transaction.")
    for receiver in list(_receivers[event]):
        receiver(incident, **kwargs)


# --- the outbox ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outbox:
    """The three calls `incidents` makes on the outbox (escalation.notify implements them).

    `queue_message(*, event, cause, address, subject, body, incident=None, problem=None, user_id=None)`:
    one e-mail, keyed by `cause` (queued twice, stored once); returns the ids still to deliver.
    `queue_team(incident, *, team, event, detail, cause)`: the team's entitled members and address are told.
    `deliver_after_commit(ids)`: prompt delivery once the transaction commits.
    """

    queue_message: Callable[..., list[int]]
    queue_team: Callable[..., list[int]]
    deliver_after_commit: Callable[[list[int]], None]


_outbox: list[Outbox] = []


def provide_outbox(outbox: Outbox) -> None:
    _outbox[:] = [outbox]


def outbox() -> Outbox:
    if not _outbox:
        raise ImproperlyConfigured("No outbox is provided: is the 'escalation' app installed?")
    return _outbox[0]


# --- team page -----------------------------------------------------------------------------------------

TeamPageContext = Callable[[Team, datetime], dict[str, Any]]
_team_page: list[TeamPageContext] = []


def connect_team_page(provider: TeamPageContext) -> None:
    if provider not in _team_page:
        _team_page.append(provider)


def team_page_context(team: Team, *, at: datetime) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for provider in _team_page:
        context.update(provider(team, at))
    return context


# --- the configuration stamp ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigStamp:
    """`sql`: a scalar subquery that reads the stamp, to put in a statement made anyway; `using(token)`: the
    block within which the receivers keep what they read under the stamp read (escalation.configcache)."""

    sql: str
    using: Callable[[int | None], AbstractContextManager[None]]


_config_stamp: list[ConfigStamp] = []


def provide_config_stamp(stamp: ConfigStamp) -> None:
    _config_stamp[:] = [stamp]


def config_stamp_sql() -> str | None:
    """The stamp's scalar subquery, or None when no app keeps configuration under a stamp."""
    return _config_stamp[0].sql if _config_stamp else None


def configuration(token: int | None) -> AbstractContextManager[None]:
    """Announce within this block, with `token` read by `config_stamp_sql()` before the block (None: not read,
    the receivers read what they need)."""
    if token is None or not _config_stamp:
        return nullcontext()
    return _config_stamp[0].using(token)
