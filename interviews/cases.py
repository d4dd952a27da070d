"""The case library: one document format for a case, versions, and draft -> review -> published -> retired.

A case document is a plain dict (the API's JSON, the configuration file's YAML, the demo data) with the
presentation, brief, time boxes, facts, expected problems, model solutions and harmful actions, which
refer to each other by key. `apply_case_document` writes it:

- to the latest version, when that is a draft (or in review) that no session has used;
- to a new version otherwise: a version that any session used is frozen, and a published or retired
  version is never edited in place.

Applying a document equal to the latest version changes nothing, so applying a file twice is a no-op.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from incidents.models import Domain

from . import pseudonymise
from .lifecycle import InvalidSessionTransition
from .models import (
    Case,
    CaseFinding,
    CaseVersion,
    ExpectedProblem,
    Fact,
    HarmfulAction,
    ModelSolution,
    Rubric,
    RubricDimension,
)

Status = CaseVersion.Status
SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]+$")
TIME_BOX_FIELDS = {
    "present": "present_seconds",
    "gather": "gather_seconds",
    "extract": "extract_seconds",
    "solve": "solve_seconds",
    "evaluate": "evaluate_seconds",
}
SCALAR_FIELDS = ("title", "target_role", "presentation", "brief", "actual_outcome")


class CaseAction(StrEnum):
    SUBMIT = "submit"
    RETURN = "return"
    APPROVE = "approve"
    RETIRE = "retire"


CASE_ALLOWED_FROM: dict[CaseAction, frozenset[str]] = {
    CaseAction.SUBMIT: frozenset({Status.DRAFT}),
    CaseAction.RETURN: frozenset({Status.REVIEW}),
    CaseAction.APPROVE: frozenset({Status.REVIEW}),
    CaseAction.RETIRE: frozenset({Status.PUBLISHED}),
}


class InvalidCaseTransition(InvalidSessionTransition):
    def __init__(self, version: CaseVersion, action: str) -> None:
        self.action = action
        self.state = version.status
        self.allowed_actions = case_actions(version)
        Exception.__init__(
            self,
            f"Cannot {action} a case version that is {version.status}. "
            + (f"Allowed actions: {', '.join(self.allowed_actions)}." if self.allowed_actions else ""),
        )


def case_actions(version: CaseVersion) -> list[str]:
    return [str(a) for a in CaseAction if version.status in CASE_ALLOWED_FROM[a]]


class ImageRefused(InvalidCaseTransition):
    """The image of a version that is not a draft cannot change (409): make a new version first."""

    def __init__(self, version: CaseVersion) -> None:
        self.action = "change the image of"
        self.state = version.status
        self.allowed_actions = case_actions(version)
        Exception.__init__(
            self,
            f"The image of a case version that is {version.status} cannot change; make a new version (new-version).",
        )


@transaction.atomic
def set_image(version: CaseVersion, *, upload: Any, actor: Any = None) -> CaseVersion:
    """Attach a presentation image to a draft version, replacing any other (see `interviews.images`).

    The file is stored re-encoded under a random name in the private attachments storage; versions that
    were copied from this one keep the file they had. Each call stores one new file.
    """
    from django.core.files.base import ContentFile

    from .images import clean_image

    version = CaseVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != Status.DRAFT or version.is_frozen:
        raise ImageRefused(version)
    data, mime = clean_image(upload)
    version.image.save("image", ContentFile(data), save=False)
    version.image_type = mime
    version.save(update_fields=["image", "image_type"])
    return version


@transaction.atomic
def remove_image(version: CaseVersion, *, actor: Any = None) -> CaseVersion:
    """Detach the image of a draft version (the file stays for any version copied from it). Twice: no-op."""
    version = CaseVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != Status.DRAFT or version.is_frozen:
        raise ImageRefused(version)
    if version.image:
        version.image = ""
        version.image_type = ""
        version.save(update_fields=["image", "image_type"])
    return version


# --------------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------------


def _num(value: Decimal | float | int) -> float | int:
    number = float(value)
    return int(number) if number.is_integer() else number


def case_document(version: CaseVersion) -> dict[str, Any]:
    """The version's content as a document that `apply_case_document` accepts."""
    facts = list(version.facts.prefetch_related("requires"))
    problems = list(version.problems.prefetch_related("required_facts"))
    return {
        "slug": version.case.slug,
        "title": version.title,
        "domain": version.domain.slug if version.domain else None,
        "tags": list(version.tags),
        "difficulty": version.difficulty,
        "target_role": version.target_role,
        "presentation": version.presentation,
        "brief": version.brief,
        "time_boxes": version.time_boxes(),
        "actual_outcome": version.actual_outcome,
        "rubric": version.rubric.slug,
        "facts": [
            {
                "key": f.key,
                "title": f.title,
                "text": f.text,
                "partial_text": f.partial_text,
                "category": f.category,
                "importance": f.importance,
                "triggers": list(f.triggers),
                "keywords": list(f.keywords),
                "requires": sorted(r.key for r in f.requires.all()),
                "offset_minutes": f.offset_minutes,
            }
            for f in facts
        ],
        "problems": [
            {
                "key": p.key,
                "statement": p.statement,
                "kind": p.kind,
                "weight": _num(p.weight),
                "required_facts": sorted(f.key for f in p.required_facts.all()),
                "paraphrases": list(p.paraphrases),
            }
            for p in problems
        ],
        "solutions": [
            {
                "key": s.key,
                "action": s.action,
                "type": s.type,
                "rank": s.rank,
                "weight": _num(s.weight),
                "addresses": sorted(p.key for p in s.addresses.all()),
            }
            for s in version.solutions.prefetch_related("addresses")
        ],
        "harmful_actions": [
            {"key": h.key, "action": h.action, "why": h.why, "penalty": _num(h.penalty)}
            for h in version.harmful_actions.all()
        ],
    }


def _str_list(value: Any, field: str, errors: dict[str, list[str]]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.setdefault(field, []).append("Must be a list of strings.")
        return []
    return [v.strip() for v in value if v.strip()]


def _choice(value: Any, choices: list[str], field: str, errors: dict[str, list[str]], default: str) -> str:
    value = default if value in (None, "") else value
    if value not in choices:
        errors.setdefault(field, []).append(f"Must be one of: {', '.join(choices)}.")
    return str(value)


def _number(
    value: Any, field: str, errors: dict[str, list[str]], *, default: float, minimum: float
) -> Decimal:
    if value is None:
        value = default
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        errors.setdefault(field, []).append("Must be a number.")
        return Decimal(default)
    if not number.is_finite() or number < Decimal(str(minimum)) or number >= 1000:
        errors.setdefault(field, []).append(f"Must be a number from {minimum} to below 1000.")
    return number.quantize(Decimal("0.01"))


def _text(
    item: dict[str, Any], name: str, field: str, errors: dict[str, list[str]], *, required: bool
) -> str:
    value = item.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors.setdefault(field, []).append("Must be text.")
        return ""
    if required and not value.strip():
        errors.setdefault(field, []).append("This field is required.")
    return value.strip()


def _keyed(items: Any, section: str, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        errors.setdefault(section, []).append("Must be a list of objects.")
        return []
    seen: set[str] = set()
    for index, item in enumerate(items):
        key = item.get("key")
        if not isinstance(key, str) or not SLUG_RE.match(key) or len(key) > 30:
            errors.setdefault(f"{section}[{index}].key", []).append(
                "A key of letters, digits, - or _ (30 at most)."
            )
        elif key in seen:
            errors.setdefault(f"{section}[{index}].key", []).append(f"Key {key} is used twice.")
        else:
            seen.add(key)
    return items


def _refs(value: Any, known: set[str], field: str, errors: dict[str, list[str]]) -> list[str]:
    keys = _str_list(value, field, errors)
    unknown = [k for k in keys if k not in known]
    if unknown:
        errors.setdefault(field, []).append(f"Unknown keys: {', '.join(unknown)}.")
    return sorted(set(keys) - set(unknown))


def _has_cycle(requires: dict[str, list[str]]) -> bool:
    state: dict[str, int] = {}

    def visit(key: str) -> bool:
        if state.get(key) == 1:
            return True
        if state.get(key) == 2:
            return False
        state[key] = 1
        if any(visit(r) for r in requires.get(key, [])):
            return True
        state[key] = 2
        return False

    return any(visit(k) for k in requires)


def validate_case_document(doc: Any) -> dict[str, Any]:
    """The document, normalised (defaults filled, text stripped), or ValidationError naming each field."""
    errors: dict[str, list[str]] = {}
    if not isinstance(doc, dict):
        raise ValidationError({"non_field_errors": ["A case document is an object."]})
    slug = doc.get("slug") or slugify(str(doc.get("title") or ""))
    if not isinstance(slug, str) or not SLUG_RE.match(slug) or len(slug) > 80:
        errors["slug"] = ["A slug of letters, digits, - or _ (80 at most)."]
    out: dict[str, Any] = {"slug": slug}
    for name in SCALAR_FIELDS:
        out[name] = _text(doc, name, name, errors, required=name in ("title", "presentation"))
    if len(out["title"]) > 200:
        errors.setdefault("title", []).append("200 characters at most.")
    domain = doc.get("domain")
    if domain and not Domain.objects.filter(slug=domain).exists():
        errors["domain"] = [f"Unknown domain {domain!r}."]
    out["domain"] = domain or None
    out["tags"] = _str_list(doc.get("tags"), "tags", errors)
    difficulty = doc.get("difficulty", CaseVersion.Difficulty.INTERMEDIATE)
    if difficulty not in CaseVersion.Difficulty.values:
        errors["difficulty"] = ["Must be 1 to 5."]
    out["difficulty"] = difficulty
    boxes = doc.get("time_boxes") or {}
    if not isinstance(boxes, dict) or set(boxes) - set(TIME_BOX_FIELDS):
        errors["time_boxes"] = [f"An object with any of: {', '.join(TIME_BOX_FIELDS)} (seconds)."]
        boxes = {}
    defaults = {name: getattr(CaseVersion(), f) for name, f in TIME_BOX_FIELDS.items()}
    out["time_boxes"] = {**defaults, **boxes}
    for name, seconds in out["time_boxes"].items():
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 30 <= seconds <= 4 * 3600:
            errors.setdefault(f"time_boxes.{name}", []).append("Seconds, from 30 to 14400.")
    rubric = doc.get("rubric") or "incident-process"
    if not Rubric.objects.filter(slug=rubric).exists():
        errors["rubric"] = [f"Unknown rubric {rubric!r}."]
    out["rubric"] = rubric

    facts = _keyed(doc.get("facts"), "facts", errors)
    fact_keys = {f["key"] for f in facts if isinstance(f.get("key"), str)}
    out["facts"] = []
    for i, item in enumerate(facts):
        where = f"facts[{i}]"
        offset = item.get("offset_minutes")
        if offset is not None and (not isinstance(offset, int) or isinstance(offset, bool)):
            errors.setdefault(f"{where}.offset_minutes", []).append("Whole minutes.")
        fact = {
            "key": item.get("key"),
            "title": _text(item, "title", f"{where}.title", errors, required=True)[:120],
            "text": _text(item, "text", f"{where}.text", errors, required=True),
            "partial_text": _text(item, "partial_text", f"{where}.partial_text", errors, required=False),
            "category": _choice(
                item.get("category"), Fact.Category.values, f"{where}.category", errors, "timeline"
            ),
            "importance": _choice(
                item.get("importance"), Fact.Importance.values, f"{where}.importance", errors, "supporting"
            ),
            "triggers": _str_list(item.get("triggers"), f"{where}.triggers", errors),
            "keywords": _str_list(item.get("keywords"), f"{where}.keywords", errors),
            "requires": _refs(
                item.get("requires"), fact_keys - {item.get("key")}, f"{where}.requires", errors
            ),
            "offset_minutes": offset,
        }
        out["facts"].append(fact)
    if _has_cycle({f["key"]: f["requires"] for f in out["facts"]}):
        errors.setdefault("facts", []).append("The facts' prerequisites form a cycle.")

    problems = _keyed(doc.get("problems"), "problems", errors)
    problem_keys = {p["key"] for p in problems if isinstance(p.get("key"), str)}
    out["problems"] = [
        {
            "key": item.get("key"),
            "statement": _text(item, "statement", f"problems[{i}].statement", errors, required=True),
            "kind": _choice(
                item.get("kind"), ExpectedProblem.Kind.values, f"problems[{i}].kind", errors, "root_cause"
            ),
            "weight": _number(item.get("weight"), f"problems[{i}].weight", errors, default=1, minimum=0.01),
            "required_facts": _refs(
                item.get("required_facts"), fact_keys, f"problems[{i}].required_facts", errors
            ),
            "paraphrases": _str_list(item.get("paraphrases"), f"problems[{i}].paraphrases", errors),
        }
        for i, item in enumerate(problems)
    ]
    solutions = _keyed(doc.get("solutions"), "solutions", errors)
    out["solutions"] = []
    for i, item in enumerate(solutions):
        rank = item.get("rank", i + 1)
        if not isinstance(rank, int) or isinstance(rank, bool) or not 1 <= rank <= 100:
            errors.setdefault(f"solutions[{i}].rank", []).append("A rank from 1 to 100.")
        out["solutions"].append(
            {
                "key": item.get("key"),
                "action": _text(item, "action", f"solutions[{i}].action", errors, required=True),
                "type": _choice(
                    item.get("type"), ModelSolution.Type.values, f"solutions[{i}].type", errors, "fix"
                ),
                "rank": rank,
                "weight": _number(
                    item.get("weight"), f"solutions[{i}].weight", errors, default=1, minimum=0.01
                ),
                "addresses": _refs(item.get("addresses"), problem_keys, f"solutions[{i}].addresses", errors),
            }
        )
    harmful = _keyed(doc.get("harmful_actions"), "harmful_actions", errors)
    out["harmful_actions"] = [
        {
            "key": item.get("key"),
            "action": _text(item, "action", f"harmful_actions[{i}].action", errors, required=True),
            "why": _text(item, "why", f"harmful_actions[{i}].why", errors, required=False),
            "penalty": _number(
                item.get("penalty"), f"harmful_actions[{i}].penalty", errors, default=1, minimum=0
            ),
        }
        for i, item in enumerate(harmful)
    ]
    if errors:
        raise ValidationError(errors)
    return out


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """A document with numbers as floats, for comparing a stored version with an incoming document."""

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, Decimal):
            return _num(value)
        return value

    return norm(doc)


def _write_content(version: CaseVersion, doc: dict[str, Any]) -> None:
    for name in SCALAR_FIELDS:
        setattr(version, name, doc[name])
    version.domain = Domain.objects.get(slug=doc["domain"]) if doc["domain"] else None
    version.tags = doc["tags"]
    version.difficulty = doc["difficulty"]
    for name, field in TIME_BOX_FIELDS.items():
        setattr(version, field, doc["time_boxes"][name])
    version.rubric = Rubric.objects.get(slug=doc["rubric"])
    version.save()
    version.facts.all().delete()
    version.problems.all().delete()
    version.solutions.all().delete()
    version.harmful_actions.all().delete()
    facts: dict[str, Fact] = {}
    for order, item in enumerate(doc["facts"]):
        values = {k: v for k, v in item.items() if k != "requires"}
        facts[item["key"]] = Fact.objects.create(version=version, order=order, **values)
    for item in doc["facts"]:
        if item["requires"]:
            facts[item["key"]].requires.set([facts[k] for k in item["requires"]])
    problems: dict[str, ExpectedProblem] = {}
    for order, item in enumerate(doc["problems"]):
        values = {k: v for k, v in item.items() if k != "required_facts"}
        problem = ExpectedProblem.objects.create(version=version, order=order, **values)
        problem.required_facts.set([facts[k] for k in item["required_facts"]])
        problems[item["key"]] = problem
    for item in doc["solutions"]:
        values = {k: v for k, v in item.items() if k != "addresses"}
        solution = ModelSolution.objects.create(version=version, **values)
        solution.addresses.set([problems[k] for k in item["addresses"]])
    for item in doc["harmful_actions"]:
        HarmfulAction.objects.create(version=version, **item)
    if version.source_incident_id is not None:
        refresh_findings(version)


@transaction.atomic
def apply_case_document(
    doc: Any, *, actor: Any = None, source_incident: Any = None
) -> tuple[CaseVersion, bool]:
    """Write a case document; returns the version written and whether anything changed.

    Creates the case on first use. Edits the latest version in place only while it is an unused draft
    (a version in review goes back to draft); otherwise the edit makes version n+1, a draft. Calling it
    twice with the same document changes nothing the second time.
    """
    clean = validate_case_document(doc)
    case, _ = Case.objects.get_or_create(slug=clean["slug"], defaults={"created_by": _user(actor)})
    case = Case.objects.select_for_update().get(pk=case.pk)
    latest = case.versions.order_by("-number").first()
    if latest is not None and _comparable(case_document(latest)) == _comparable(clean):
        return latest, False
    if latest is not None and latest.status in (Status.DRAFT, Status.REVIEW) and not latest.is_frozen:
        version = latest
        version.status = Status.DRAFT
        version.submitted_by = None
        version.submitted_at = None
    else:
        inherited: Any = latest.source_incident if latest else None
        version = CaseVersion(
            case=case,
            number=(latest.number + 1) if latest else 1,
            created_by=_user(actor),
            source_incident=source_incident if source_incident is not None else inherited,
            pseudonyms=latest.pseudonyms if latest else {},
            pseudonym_keys=latest.pseudonym_keys if latest else {},
            image=latest.image.name if latest else "",
            image_type=latest.image_type if latest else "",
        )
    _write_content(version, clean)
    return version, True


@transaction.atomic
def new_version(version: CaseVersion, *, actor: Any = None) -> CaseVersion:
    """A new draft copied from `version` (to revise a published or frozen case)."""
    latest = version.case.versions.order_by("-number").first()
    assert latest is not None  # noqa: S101 - `version` itself is one
    copy = CaseVersion(
        case=version.case,
        number=latest.number + 1,
        created_by=_user(actor),
        source_incident=version.source_incident,
        pseudonyms=version.pseudonyms,
        pseudonym_keys=version.pseudonym_keys,
        image=version.image.name,
        image_type=version.image_type,
    )
    _write_content(copy, validate_case_document(case_document(version)))
    return copy


def _user(actor: Any) -> Any:
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


# --------------------------------------------------------------------------------------------------
# Review and publishing
# --------------------------------------------------------------------------------------------------


def case_texts(version: CaseVersion) -> list[tuple[str, str]]:
    """(where, text) for every text of a version that a candidate or panel reads."""
    texts = [(name, getattr(version, name)) for name in ("title", "presentation", "brief", "actual_outcome")]
    for f in version.facts.all():
        texts += [(f"fact {f.key}", f.title), (f"fact {f.key}", f.text), (f"fact {f.key}", f.partial_text)]
        texts += [(f"fact {f.key}", t) for t in [*f.triggers, *f.keywords]]
    for p in version.problems.all():
        texts += [(f"problem {p.key}", p.statement), *((f"problem {p.key}", t) for t in p.paraphrases)]
    texts += [(f"solution {s.key}", s.action) for s in version.solutions.all()]
    texts += [(f"harmful action {h.key}", h.action) for h in version.harmful_actions.all()]
    texts += [(f"harmful action {h.key}", h.why) for h in version.harmful_actions.all()]
    return [(where, text) for where, text in texts if text]


def known_names_for(version: CaseVersion) -> list[str]:
    """The names of the people of the source incident, for the person detector."""
    if version.source_incident_id is None:
        return []
    from .wizard import people_of_incident

    incident = version.source_incident
    assert incident is not None  # noqa: S101
    return [alias for person in people_of_incident(incident) for alias in person]


def identifying_findings(version: CaseVersion) -> list[str]:
    """What the pseudonymisation detectors still find in the version, as readable messages."""
    names = known_names_for(version)
    messages = []
    for where, text in case_texts(version):
        for finding in pseudonymise.detect(text, known_names=names):
            messages.append(f"{where}: {finding.kind} {finding.text!r}")
    return messages


def publication_problems(version: CaseVersion) -> dict[str, list[str]]:
    """Why the version cannot be published yet (empty when it can)."""
    problems: dict[str, list[str]] = {}
    sentences = len(pseudonymise.sentences(version.presentation.strip()))
    if not 2 <= sentences <= 6:
        problems["presentation"] = [f"A presentation has 2 to 6 sentences; this one has {sentences}."]
    facts = list(version.facts.all())
    if not any(f.importance == Fact.Importance.KEY for f in facts):
        problems["facts"] = ["A case needs at least one key fact."]
    if not version.problems.exists():
        problems["problems"] = ["A case needs at least one expected problem."]
    if not version.solutions.exists():
        problems["solutions"] = ["A case needs at least one model solution."]
    if not RubricDimension.objects.filter(rubric_id=version.rubric_id).exists():
        problems["rubric"] = ["The rubric has no dimensions."]
    # Hand-written cases are fiction: their findings are shown, not blocking. A case drafted from a real
    # incident is not published while a finding is open.
    if version.source_incident_id is not None:
        open_ = [f for f in version.findings.all() if f.status == CaseFinding.Status.OPEN]
        if open_:
            problems["pseudonymisation"] = [
                f"Open finding #{f.pk}: {f.kind} {f.text!r} in {', '.join(f.locations)}; accept or replace it."
                for f in open_
            ]
    return problems


def _lock_version(version: CaseVersion, action: CaseAction) -> CaseVersion:
    locked = CaseVersion.objects.select_for_update().select_related("case").get(pk=version.pk)
    if locked.status not in CASE_ALLOWED_FROM[action]:
        raise InvalidCaseTransition(locked, action)
    return locked


@transaction.atomic
def submit_for_review(version: CaseVersion, *, actor: Any) -> CaseVersion:
    """draft -> review. The submitter cannot be the one who approves it."""
    version = _lock_version(version, CaseAction.SUBMIT)
    # Open findings do not stop a submission: deciding them is the reviewer's part.
    problems = {k: v for k, v in publication_problems(version).items() if k != "pseudonymisation"}
    if problems:
        raise ValidationError(problems)
    version.status = Status.REVIEW
    version.submitted_by = _user(actor)
    version.submitted_at = timezone.now()
    version.save(update_fields=["status", "submitted_by", "submitted_at"])
    return version


@transaction.atomic
def return_to_draft(version: CaseVersion, *, actor: Any) -> CaseVersion:
    """review -> draft, for changes the reviewer asked for."""
    version = _lock_version(version, CaseAction.RETURN)
    version.status = Status.DRAFT
    version.save(update_fields=["status"])
    return version


@transaction.atomic
def approve(version: CaseVersion, *, actor: Any) -> CaseVersion:
    """review -> published, by a second person; the case's previously published version is retired.

    Refused (409) while a finding of a version drafted from an incident is open, and when the approver
    submitted or drafted the version themselves.
    """
    version = _lock_version(version, CaseAction.APPROVE)
    if actor is None or actor.pk in {version.submitted_by_id, version.created_by_id}:
        raise PermissionDenied(
            "A second person must approve a case: not the one who drafted or submitted it."
        )
    if version.source_incident_id is not None:
        # What the detectors find now, not what they found when the version was last written.
        refresh_findings(version)
        open_ = list(version.findings.filter(status=CaseFinding.Status.OPEN))
        if open_:
            raise FindingsOpen(version, open_)
    problems = publication_problems(version)
    if problems:
        raise ValidationError(problems)
    now = timezone.now()
    CaseVersion.objects.filter(case=version.case, status=Status.PUBLISHED).update(
        status=Status.RETIRED, retired_at=now
    )
    version.status = Status.PUBLISHED
    version.approved_by = actor
    version.published_at = now
    version.save(update_fields=["status", "approved_by", "published_at"])
    return version


@transaction.atomic
def retire(version: CaseVersion, *, actor: Any) -> CaseVersion:
    """published -> retired: no new sessions; past sessions and their reports stay."""
    version = _lock_version(version, CaseAction.RETIRE)
    version.status = Status.RETIRED
    version.retired_at = timezone.now()
    version.save(update_fields=["status", "retired_at"])
    return version


# --------------------------------------------------------------------------------------------------
# Findings: what the detectors find in a version drafted from an incident, decided one by one
# --------------------------------------------------------------------------------------------------


class FindingDecision(StrEnum):
    ACCEPT = "accept"
    REPLACE = "replace"


class FindingsOpen(InvalidCaseTransition):
    """Approving while a finding is open (409): each is accepted or replaced first."""

    def __init__(self, version: CaseVersion, findings: list[CaseFinding]) -> None:
        self.action = str(CaseAction.APPROVE)
        self.state = version.status
        self.allowed_actions = case_actions(version)
        self.findings = [f.pk for f in findings]
        Exception.__init__(
            self,
            f"{len(findings)} finding(s) are open ("
            + ", ".join(f"#{f.pk} {f.kind} {f.text!r}" for f in findings[:10])
            + "): accept or replace each before the case is published.",
        )


class FindingRefused(InvalidCaseTransition):
    """A finding of a version that is no longer a draft or in review, or that was already decided (409)."""

    def __init__(self, finding: CaseFinding, reason: str) -> None:
        self.action = "decide"
        self.state = finding.status
        self.allowed_actions = (
            [str(d) for d in FindingDecision] if finding.status == CaseFinding.Status.OPEN else []
        )
        Exception.__init__(self, reason)


def _detected(version: CaseVersion) -> dict[tuple[str, str], dict[str, Any]]:
    names = known_names_for(version)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for where, text in case_texts(version):
        for finding in pseudonymise.detect(text, known_names=names):
            entry = found.setdefault((finding.kind, finding.text[:300]), {"locations": [], "certain": False})
            if where not in entry["locations"]:
                entry["locations"].append(where)
            entry["certain"] = entry["certain"] or finding.certain
    return found


def refresh_findings(version: CaseVersion) -> list[CaseFinding]:
    """Bring the version's findings in line with what the detectors find in it now; returns the open ones.

    A new text gets an open finding, unless a reviewer accepted the same text in an earlier version of
    the case. An open finding whose text is gone is removed; accepted and replaced ones stay as the record
    of the decision. Calling it twice changes nothing the second time.
    """
    detected = _detected(version)
    existing = {(f.kind, f.text): f for f in version.findings.exclude(status=CaseFinding.Status.REPLACED)}
    accepted_before = {
        (f.kind, f.text): f
        for f in CaseFinding.objects.filter(
            version__case_id=version.case_id, status=CaseFinding.Status.ACCEPTED
        ).exclude(version=version)
    }
    for key, info in detected.items():
        finding = existing.get(key)
        if finding is None:
            earlier = accepted_before.get(key)
            CaseFinding.objects.create(
                version=version,
                kind=key[0],
                text=key[1],
                locations=info["locations"],
                certain=info["certain"],
                status=CaseFinding.Status.ACCEPTED if earlier else CaseFinding.Status.OPEN,
                decided_by_id=earlier.decided_by_id if earlier else None,
                decided_at=earlier.decided_at if earlier else None,
            )
        elif finding.locations != info["locations"] or finding.certain != info["certain"]:
            finding.locations, finding.certain = info["locations"], info["certain"]
            finding.save(update_fields=["locations", "certain"])
    for key, finding in existing.items():
        if key not in detected:
            if finding.status == CaseFinding.Status.OPEN:
                finding.delete()
            elif finding.locations:
                finding.locations = []
                finding.save(update_fields=["locations"])
    return list(version.findings.filter(status=CaseFinding.Status.OPEN))


SUGGESTIONS = {
    pseudonymise.PERSON: "Person {letters}",
    pseudonymise.EMAIL: "mailbox-{n}@example.invalid",
    pseudonymise.HOST: "host-{n}",
    pseudonymise.IP: "192.0.2.{n}",
    pseudonymise.PHONE: "+00 0000 {n:04d}",
    pseudonymise.REFERENCE: "REF-{letters}",
    pseudonymise.DEVICE: "device-{n}",
    pseudonymise.BIRTHDATE: "[date of birth]",
    pseudonymise.DATETIME: "[time]",
}


def used_text(version: CaseVersion) -> str:
    """Every pseudonym and text of the version, to choose a suggestion it does not use yet."""
    return " ".join([*version.pseudonyms, *(t for _w, t in case_texts(version))])


def original_key(kind: str, original: str) -> str:
    """The digest under which `pseudonym_keys` keeps an original's pseudonym (keyed with SECRET_KEY)."""
    from django.utils.crypto import salted_hmac

    if kind == pseudonymise.PHONE:
        original = re.sub(r"[^\d+]", "", original)
    return salted_hmac("interviews.pseudonym", f"{kind}:{' '.join(original.lower().split())}").hexdigest()[
        :32
    ]


def suggested_replacement(finding: CaseFinding, *, used: str | None = None) -> str:
    """The pseudonym the finding's text already has in this case (a name put back in), else a pseudonym
    of its kind that the version does not use yet (`used`: `used_text`)."""
    titles, name = (
        pseudonymise.strip_titles(finding.text) if finding.kind == pseudonymise.PERSON else ("", finding.text)
    )
    known = finding.version.pseudonym_keys.get(original_key(finding.kind, name))
    if known:
        return f"{titles}{known}"
    template = SUGGESTIONS.get(finding.kind, "[removed]")
    if used is None:
        used = used_text(finding.version)
    for n in range(1, 1000):
        candidate = template.format(n=n, letters=pseudonymise._letters(n - 1))
        if candidate not in used or "{" not in template:
            return candidate
    return "[removed]"  # pragma: no cover - a thousand pseudonyms of one kind


def _replace_in(text: str, original: str, replacement: str) -> str:
    before = r"(?<![\w@.-])" if re.match(r"\w", original) else ""
    after = r"(?![\w@-])" if re.search(r"\w$", original) else ""
    return re.sub(before + re.escape(original) + after, lambda _m: replacement, text)


def _replace_everywhere(version: CaseVersion, original: str, replacement: str) -> None:
    def sub(value: Any) -> Any:
        if isinstance(value, list):
            return [sub(v) for v in value]
        return _replace_in(value, original, replacement) if isinstance(value, str) else value

    fields = ["title", "presentation", "brief", "actual_outcome"]
    for name in fields:
        setattr(version, name, sub(getattr(version, name)))
    version.save(update_fields=fields)
    for model, names in (
        (version.facts, ["title", "text", "partial_text", "triggers", "keywords"]),
        (version.problems, ["statement", "paraphrases"]),
        (version.solutions, ["action"]),
        (version.harmful_actions, ["action", "why"]),
    ):
        for row in model.all():
            changed = [n for n in names if sub(getattr(row, n)) != getattr(row, n)]
            for n in changed:
                setattr(row, n, sub(getattr(row, n)))
            if changed:
                row.save(update_fields=changed)


@transaction.atomic
def decide_finding(
    finding: CaseFinding, *, actor: Any, decision: str, replacement: str | None = None
) -> CaseFinding:
    """Accept a finding (it identifies no one) or replace its text everywhere in the version.

    Only while the version is a draft or in review and no session used it (409 otherwise). Without a
    `replacement`, a replace uses `suggested_replacement`; a replacement that a detector would find
    again is refused (400, `replacement`). Accepting an accepted finding again changes nothing; a
    replaced finding is decided for good (409).
    """
    version = CaseVersion.objects.select_for_update().get(pk=finding.version_id)
    finding = CaseFinding.objects.select_for_update().get(pk=finding.pk)
    if decision not in FindingDecision.__members__.values():
        raise ValidationError({"decision": [f"One of {', '.join(FindingDecision)}."]})
    if version.status not in (Status.DRAFT, Status.REVIEW) or version.is_frozen:
        raise FindingRefused(
            finding, f"The findings of a version that is {version.status} are decided; make a new version."
        )
    if finding.status == CaseFinding.Status.ACCEPTED and decision == FindingDecision.ACCEPT:
        return finding
    if finding.status != CaseFinding.Status.OPEN:
        raise FindingRefused(finding, f"Finding #{finding.pk} is already {finding.status}.")
    if decision == FindingDecision.ACCEPT:
        finding.status = CaseFinding.Status.ACCEPTED
    else:
        value = (replacement if replacement is not None else suggested_replacement(finding)).strip()
        if not value or len(value) > 300:
            raise ValidationError({"replacement": ["A replacement of 1 to 300 characters."]})
        again = pseudonymise.detect(value, known_names=known_names_for(version))
        if again:
            raise ValidationError(
                {"replacement": [f"The replacement identifies too: {again[0].kind} {again[0].text!r}."]}
            )
        _replace_everywhere(version, finding.text, value)
        version.pseudonyms = {**version.pseudonyms, value: finding.kind}
        version.save(update_fields=["pseudonyms"])
        finding.status = CaseFinding.Status.REPLACED
        finding.replacement = value
        finding.text = ""
    finding.decided_by = _user(actor)
    finding.decided_at = timezone.now()
    finding.save()
    refresh_findings(version)
    return finding


CASE_ACTIONS = {
    CaseAction.SUBMIT: submit_for_review,
    CaseAction.RETURN: return_to_draft,
    CaseAction.APPROVE: approve,
    CaseAction.RETIRE: retire,
}


# --------------------------------------------------------------------------------------------------
# Rubrics (configuration)
# --------------------------------------------------------------------------------------------------


def rubric_document(rubric: Rubric) -> dict[str, Any]:
    return {
        "slug": rubric.slug,
        "name": rubric.name,
        "description": rubric.description,
        "dimensions": [
            {
                "key": d.key,
                "name": d.name,
                "weight": _num(d.weight),
                "anchors": {str(k): v for k, v in d.anchors.items()},
            }
            for d in rubric.dimensions.all()
        ],
    }


@transaction.atomic
def apply_rubric_document(doc: dict[str, Any]) -> tuple[Rubric, bool]:
    """Create or update a rubric; dimensions are matched by key. Idempotent.

    A dimension that ratings use is never deleted (the database protects it); its name, weight and
    anchors may be clarified.
    """
    errors: dict[str, list[str]] = {}
    slug = doc.get("slug")
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        raise ValidationError({"slug": ["A slug of letters, digits, - or _."]})
    dimensions = _keyed(doc.get("dimensions"), "dimensions", errors)
    for i, d in enumerate(dimensions):
        anchors = d.get("anchors") or {}
        if not isinstance(anchors, dict) or {str(k) for k in anchors} != {"1", "2", "3", "4", "5"}:
            errors.setdefault(f"dimensions[{i}].anchors", []).append("An anchor for each level 1 to 5.")
        _number(d.get("weight"), f"dimensions[{i}].weight", errors, default=1, minimum=0.01)
        if not d.get("name"):
            errors.setdefault(f"dimensions[{i}].name", []).append("This field is required.")
    if errors:
        raise ValidationError(errors)
    rubric = Rubric.objects.filter(slug=slug).first()
    if rubric is not None and _comparable(rubric_document(rubric)) == _comparable(
        {
            "slug": slug,
            "name": doc.get("name", ""),
            "description": doc.get("description", ""),
            "dimensions": [
                {
                    "key": d["key"],
                    "name": d["name"],
                    "weight": _num(Decimal(str(d.get("weight", 1)))),
                    "anchors": {str(k): v for k, v in d["anchors"].items()},
                }
                for d in dimensions
            ],
        }
    ):
        return rubric, False
    rubric, _ = Rubric.objects.update_or_create(
        slug=slug, defaults={"name": doc.get("name", slug), "description": doc.get("description", "")}
    )
    keys = []
    for order, d in enumerate(dimensions):
        keys.append(d["key"])
        RubricDimension.objects.update_or_create(
            rubric=rubric,
            key=d["key"],
            defaults={
                "name": d["name"],
                "weight": Decimal(str(d.get("weight", 1))),
                "order": order,
                "anchors": {str(k): v for k, v in d["anchors"].items()},
            },
        )
    rubric.dimensions.exclude(key__in=keys).delete()
    return rubric, True
