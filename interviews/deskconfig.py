"""The ``interviews`` section of the configuration file: rubrics and the case library.

The same document as ``interview_config export|apply`` (that command calls these two functions), so an
interviews file and the desk's file share one format. Rubrics and cases are never removed by applying:
sessions and ratings refer to them; a case in use gets a new version instead of being edited.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from interviews import cases
from interviews.models import Case, Rubric


def export_interviews() -> dict[str, Any]:
    return {
        "rubrics": [cases.rubric_document(r) for r in Rubric.objects.prefetch_related("dimensions")],
        "cases": [
            cases.case_document(v)
            for case in Case.objects.order_by("slug")
            if (v := case.versions.order_by("-number").first()) is not None
        ],
    }


def apply_interviews(data: Any, *, dry_run: bool = False) -> list[str]:
    """Write rubrics, then cases; a ValueError names the path (``interviews.cases[0].title: ...``)."""
    if not isinstance(data, dict) or set(data) - {"rubrics", "cases"}:
        raise ValueError("interviews: holds `rubrics` and `cases`.")
    changes: list[str] = []
    with transaction.atomic():
        for kind, apply in (("rubrics", _apply_rubric), ("cases", _apply_case)):
            items = data.get(kind) or []
            if not isinstance(items, list):
                raise ValueError(f"interviews.{kind}: a list.")
            for i, doc in enumerate(items):
                try:
                    change = apply(doc)
                except ValidationError as error:
                    raise ValueError("\n".join(_lines(f"interviews.{kind}[{i}]", error))) from error
                if change:
                    changes.append(change)
        if dry_run:
            transaction.set_rollback(True)
    return changes


def _apply_rubric(doc: Any) -> str:
    if not isinstance(doc, dict):
        raise ValidationError("An object.")
    rubric, changed = cases.apply_rubric_document(doc)
    return f"rubric {rubric.slug}" if changed else ""


def _apply_case(doc: Any) -> str:
    version, changed = cases.apply_case_document(doc)
    return f"case {version} ({version.status})" if changed else ""


def _lines(path: str, error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [f"{path}.{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()]
    return [f"{path}: {' '.join(error.messages)}"]
