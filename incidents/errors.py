"""The domain's refusals, shared by every app (the API answers both with 409).

`InvalidTransition`: the object's state does not allow the action (``allowed_actions`` lists what does).
`StaleVersion`: someone else changed the object since the caller read it (``current_version`` is now).
Other apps subclass them for their own objects (interview sessions) and import them from here.
"""

from __future__ import annotations

from typing import Any


class InvalidTransition(Exception):
    """The action is not allowed in the object's state."""

    noun = "an incident"

    def __init__(self, obj: Any, action: str, allowed: list[str]) -> None:
        self.action = action
        self.state = obj.state
        self.allowed_actions = allowed
        super().__init__(self.describe(obj, action, allowed))

    def describe(self, obj: Any, action: str, allowed: list[str]) -> str:
        return f"Cannot {action} {self.noun} that is {obj.state}. " + (
            f"Allowed actions: {', '.join(allowed)}." if allowed else "No action is allowed in this state."
        )


class StaleVersion(Exception):
    """Someone else changed the object since the caller read it."""

    noun = "incident"

    def __init__(self, obj: Any, version: int) -> None:
        self.current_version = obj.version
        super().__init__(
            f"The {self.noun} was changed by someone else (you sent version {version}, it is now at "
            f"version {obj.version}). Reload it and try again."
        )


class ProblemTransitionRefused(InvalidTransition):
    """The problem's state does not allow the change (409 `invalid_transition`, like an incident's).

    ``allowed`` lists the states the problem may move to next."""

    def describe(self, obj: Any, action: str, allowed: list[str]) -> str:
        return f"A {obj.state} problem cannot become {action}. Allowed next states: {', '.join(allowed) or 'none'}."


class StaleProblemVersion(StaleVersion):
    noun = "problem"
