"""The incident transition table (SPEC section 2): for each action, the states it may start from and
the state it leads to. The one place that says so: the lifecycle's actions, `allowed_actions`, the
API's action routes and the replay of an imported history all read it.

Two actions do not always lead to one fixed state, and the table says so rather than hiding it:
- acknowledging an *escalated* incident leaves it escalated (`stays`);
- resuming returns to the state the incident was held from (`HELD_FROM`);
- assigning (to a colleague or another team) never changes the state (`UNCHANGED`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum

from .models import Incident

State = Incident.State

# The target of an action that returns to the state recorded in `Incident.held_from`.
HELD_FROM = "held_from"
# The target of an action that changes who works the incident, not where it is in the lifecycle.
UNCHANGED = "unchanged"


class Action(StrEnum):
    CLASSIFY = "classify"
    ACKNOWLEDGE = "acknowledge"
    ESCALATE = "escalate"
    HOLD = "hold"
    RESUME = "resume"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    CLOSE = "close"
    CANCEL = "cancel"
    ASSIGN = "assign"


@dataclass(frozen=True)
class Transition:
    """`sources`: the states the action may start from. `target`: the state it leads to, or HELD_FROM.
    `stays`: sources in which the action changes the incident but not its state."""

    sources: frozenset[str]
    target: str
    stays: frozenset[str] = field(default_factory=frozenset)

    def target_from(self, state: str, *, held_from: str = "") -> str:
        """The state the action leads to from `state` (for HELD_FROM, from the recorded `held_from`)."""
        if state in self.stays or self.target == UNCHANGED:
            return state
        if self.target == HELD_FROM:
            return held_from or State.RESPONDING
        return self.target


TRANSITIONS: dict[Action, Transition] = {
    Action.CLASSIFY: Transition(frozenset({State.RECEIVED, State.CLASSIFIED}), State.CLASSIFIED),
    Action.ACKNOWLEDGE: Transition(
        frozenset({State.CLASSIFIED, State.ESCALATED}), State.RESPONDING, stays=frozenset({State.ESCALATED})
    ),
    Action.ESCALATE: Transition(
        frozenset({State.CLASSIFIED, State.RESPONDING, State.ESCALATED}), State.ESCALATED
    ),
    Action.HOLD: Transition(frozenset({State.RESPONDING, State.ESCALATED}), State.ON_HOLD),
    Action.RESUME: Transition(frozenset({State.ON_HOLD}), HELD_FROM),
    Action.RESOLVE: Transition(frozenset({State.RESPONDING, State.ESCALATED}), State.RESOLVED),
    Action.REOPEN: Transition(frozenset({State.RESOLVED}), State.RESPONDING),
    Action.CLOSE: Transition(frozenset({State.RESOLVED}), State.CLOSED),
    Action.CANCEL: Transition(frozenset(Incident.ACTIVE_STATES), State.CANCELLED),
    # Last: a history step that keeps the state is read as another action of the table before this one.
    Action.ASSIGN: Transition(
        frozenset({State.CLASSIFIED, State.RESPONDING, State.ESCALATED, State.ON_HOLD}), UNCHANGED
    ),
}

# action -> the states it may start from (derived; kept for callers that only ask "may it start here?").
ALLOWED_FROM: dict[Action, frozenset[str]] = {action: t.sources for action, t in TRANSITIONS.items()}

# What a reporter may do on their own incident; every other action needs a responder.
REPORTER_ACTIONS = frozenset({Action.REOPEN})


def actions_from(state: str) -> list[Action]:
    """The actions the table allows from `state`, in the table's order."""
    return [action for action, t in TRANSITIONS.items() if state in t.sources]


@functools.cache  # pure, and called for every move of every imported history
def action_between(old: str, new: str, *, history: bool = False, held_from: str = "") -> str:
    """The action of the table that leads from `old` to `new`, or "" when none does.

    A fixed target is preferred over a return to the held-from state, and both over an action that
    keeps the state (escalated -> escalated is a new escalation, not an acknowledgement).

    `history=True` names the moves of a history another tool recorded (the importer's replay):
    - a row in the state the incident is already in is an update, never an action ("");
    - the other tool did move the incident, so an action that would keep the state here still names the
      move to its target (escalated -> responding is `acknowledge`);
    - a resume goes back to `held_from`, the state the history shows it was held from (when it does not
      show it: any state a hold may start from); on_hold -> resolved is no action of the table.
    """
    if history and new == old:
        return ""
    fixed = [
        a
        for a, t in TRANSITIONS.items()
        if old in t.sources and (history or old not in t.stays) and t.target == new
    ]
    # Resuming returns to a state the incident can have been held from: a source of the action into `old`.
    returns = {held_from} if held_from else _held_from_states(old)
    held = [
        a for a, t in TRANSITIONS.items() if old in t.sources and t.target == HELD_FROM and new in returns
    ]
    kept = [a for a, t in TRANSITIONS.items() if old in t.stays and new == old]
    kept += [a for a, t in TRANSITIONS.items() if old in t.sources and t.target == UNCHANGED and new == old]
    for found in (fixed, held, kept):
        if found:
            return str(found[0])
    return ""


def _held_from_states(state: str) -> frozenset[str]:
    """The states an incident in `state` can have come from by an action of the table."""
    return frozenset(s for t in TRANSITIONS.values() if t.target == state for s in t.sources)
