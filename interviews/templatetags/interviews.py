from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def score(value: float | None, digits: int = 2) -> str:
    """A score with `digits` decimals, or "n/a" where it is undefined (nothing to compute it from)."""
    if value is None or value == "":  # "": a missing attribute in a template (e.g. no ICC for one rater)
        return "n/a"
    return f"{float(value):.{int(digits)}f}"
