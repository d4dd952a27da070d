"""Configuration as code (SPEC section 8): ``desk_config export`` / ``desk_config apply FILE``.

The file is one YAML mapping of sections. Each section is a pair of functions listed in the setting
``DESK_CONFIG_SECTIONS`` as (name, "module.export_fn", "module.apply_fn"), in the order they are applied
(what is referred to comes first):

- ``export_fn() -> Any`` returns the section as plain YAML values (usually a list of objects);
- ``apply_fn(items, *, dry_run: bool) -> list[str]`` makes the database match, returns one line per
  change (nothing when it already matches) and raises ``ValueError("section[i].field: message")``.

Apply runs every section in one transaction: an error anywhere leaves nothing applied, and a dry run
rolls back what it did. Objects are matched by their natural keys (slugs, usernames, names); an object
a section's list no longer holds is removed, unless something still uses it (then the apply fails,
naming it). A section absent from the file is left as it is.

This module also holds the incidents app's own sections (domains, qualifications, teams, categories)
and the helpers that the escalation and interviews sections use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.db.models import Prefetch
from django.db.models.deletion import ProtectedError, RestrictedError
from django.utils.module_loading import import_string
from rest_framework import serializers

from .models import Category, Domain, Membership, Qualification, QualificationHolder, Team

User = get_user_model()
FORMAT_VERSION = 1


class ConfigConflict(Exception):
    """A configuration change that would break something in use (the API answers 409, the file names it)."""


@dataclass(frozen=True)
class Section:
    name: str
    export: Callable[[], Any]
    apply: Callable[..., list[str]]


def sections() -> list[Section]:
    """The registered sections, in the order they are applied."""
    return [
        Section(name, import_string(export_path), import_string(apply_path))
        for name, export_path, apply_path in settings.DESK_CONFIG_SECTIONS
    ]


def export_config() -> dict[str, Any]:
    """The whole configuration as plain values, ready for yaml.safe_dump."""
    data: dict[str, Any] = {"version": FORMAT_VERSION}
    for section in sections():
        data[section.name] = section.export()
    return data


def apply_config(data: Any, *, dry_run: bool = False) -> list[str]:
    """Make the database match `data`, all or nothing. Applying the same data twice changes nothing."""
    registered = sections()
    if not isinstance(data, dict):
        raise ValueError("(file): a mapping of sections, e.g. `teams: [...]`.")
    known = {s.name for s in registered}
    for name in data:
        if name != "version" and name not in known:
            raise ValueError(f"{name}: unknown section; the sections are {', '.join(sorted(known))}.")
    if data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ValueError(f"version: this desk reads version {FORMAT_VERSION}.")
    changes: list[str] = []
    removals: list[Callable[[], list[str]]] = []
    token = _removals.set(removals)
    try:
        with transaction.atomic():
            for section in registered:
                if section.name in data:
                    items = data[section.name] if data[section.name] is not None else []
                    changes += section.apply(items, dry_run=dry_run)
            # Removals last and in reverse order: what refers to an object (a later section) lets go of it
            # before the object itself goes (a webhook dropped together with the step that used it).
            for remove in reversed(removals):
                changes += remove()
            if dry_run:
                transaction.set_rollback(True)
    finally:
        _removals.reset(token)
    return changes


_removals: ContextVar[list[Callable[[], list[str]]] | None] = ContextVar("desk_config_removals", default=None)


def remove_later(
    section: str, missing: Callable[[], Iterable[Any]], key: str | Callable[[Any], str]
) -> list[str]:
    """Remove what a section's list no longer holds: after every section, when run by apply_config."""
    pending = _removals.get()
    if pending is None:
        return remove_missing(section, missing(), key)
    pending.append(lambda: remove_missing(section, missing(), key))
    return []


# --- helpers for sections --------------------------------------------------------------------------------


def plain(data: Any) -> Any:
    """A serializer's output as plain YAML-safe values (dicts, lists, strings, numbers)."""
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def error_lines(path: str, errors: Any) -> list[str]:
    """DRF's nested errors as `path.field[i].sub: message` lines."""
    if isinstance(errors, dict):
        lines = []
        for key, value in errors.items():
            if isinstance(key, int) or str(key).isdigit():  # a nested list's errors, by position
                sub = f"{path}[{key}]"
            else:
                sub = path if key in ("non_field_errors", "__all__") else f"{path}.{key}"
            lines += error_lines(sub, value)
        return lines
    if isinstance(errors, list):
        if all(isinstance(e, str) for e in errors):
            return [f"{path}: {' '.join(str(e) for e in errors)}"] if errors else []
        lines = []
        for i, item in enumerate(errors):
            lines += (
                error_lines(f"{path}[{i}]", item) if isinstance(item, dict | list) else [f"{path}: {item}"]
            )
        return lines
    return [f"{path}: {errors}"]


@dataclass
class SerializedSection:
    """A section whose objects go through a DRF serializer, so the API's validation applies to the file.

    `key` names the natural key (a field of the item and of the model, or a function of an item);
    `delete_missing` removes objects the file no longer lists.
    """

    name: str
    serializer: type[serializers.Serializer]
    queryset: Callable[[], models.QuerySet[Any]]
    key: str
    delete_missing: bool = True
    drop: tuple[str, ...] = ()

    def export_one(self, instance: Any) -> dict[str, Any]:
        data = plain(self.serializer(instance).data)
        for name in self.drop:
            data.pop(name, None)
        return data

    def export(self) -> list[dict[str, Any]]:
        return [self.export_one(obj) for obj in self.queryset().order_by(self.key)]

    def apply(self, items: Any, *, dry_run: bool = False) -> list[str]:
        if not isinstance(items, list):
            raise ValueError(f"{self.name}: a list.")
        changes: list[str] = []
        errors: list[str] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            path = f"{self.name}[{i}]"
            if not isinstance(item, dict):
                errors.append(f"{path}: an object.")
                continue
            key = item.get(self.key)
            if not isinstance(key, str) or not key:
                errors.append(f"{path}.{self.key}: This field is required.")
                continue
            if key in seen:
                errors.append(f"{path}.{self.key}: {key!r} is already {self.name}[{seen[key]}].")
                continue
            seen[key] = i
            item = {k: v for k, v in item.items() if k not in self.drop}
            change = self._apply_one(path, key, item, errors)
            if change:
                changes.append(change)
        if not errors and self.delete_missing:
            keep = list(seen)
            changes += remove_later(
                self.name, lambda: self.queryset().exclude(**{f"{self.key}__in": keep}), self.key
            )
        if errors:
            raise ValueError("\n".join(errors))
        return changes

    def _apply_one(self, path: str, key: str, item: dict[str, Any], errors: list[str]) -> str:
        instance = self.queryset().filter(**{self.key: key}).first()
        before = self.export_one(instance) if instance is not None else None
        serializer = self.serializer(instance, data=item)
        if not serializer.is_valid():
            errors += error_lines(path, serializer.errors)
            return ""
        return save_if_changed(serializer, before, self.export_one, f"{self.name} {key}")


def save_if_changed(serializer: Any, before: Any, export_one: Callable[[Any], Any], label: str) -> str:
    """Save in a savepoint and keep it only if the object's exported form changed; "" when it did not.

    Comparing what the object exports before and after is exact whatever the serializer writes (nested
    rows are rewritten), so applying the same file twice writes nothing the second time.
    """
    savepoint = transaction.savepoint()
    try:
        saved = serializer.save()
    except (IntegrityError, DjangoValidationError, ConfigConflict) as error:
        # What the serializers do not check (two targets of one policy with the same slug): the database
        # refuses it, and the file names the object instead of a traceback.
        transaction.savepoint_rollback(savepoint)
        raise ValueError(f"{label}: refused: {error}") from error
    if export_one(saved) == before:
        transaction.savepoint_rollback(savepoint)
        return ""
    transaction.savepoint_commit(savepoint)
    return f"{'create' if before is None else 'update'} {label}"


def remove_missing(section: str, missing: Iterable[Any], key: str | Callable[[Any], str]) -> list[str]:
    """Delete what the file no longer lists; refuse (naming it) what something still uses."""
    changes = []
    for obj in missing:
        name = key(obj) if callable(key) else getattr(obj, key)
        try:
            with transaction.atomic():
                obj.delete()
        except (ProtectedError, RestrictedError) as error:
            blocking = (
                error.protected_objects if isinstance(error, ProtectedError) else error.restricted_objects
            )
            users = sorted({str(type(o)._meta.verbose_name_plural) for o in blocking})
            raise ValueError(
                f"{section}: {name!r} is not in the file but is still used by {', '.join(map(str, users))};"
                " keep it in the file."
            ) from error
        changes.append(f"delete {section} {name}")
    return changes


# --- the incidents app's sections --------------------------------------------------------------------


class DomainConfig(serializers.ModelSerializer):
    class Meta:
        model = Domain
        fields = ["slug", "name", "restricted", "requires_harm_level"]
        extra_kwargs: ClassVar[dict[str, Any]] = {"slug": {"validators": []}}


class ValidityDates(serializers.Serializer):
    """A qualification held from and until a date (either open): the API's `/api/v1/users/` qualifications
    and this file's holders validate through it alike."""

    valid_from = serializers.DateField(required=False, allow_null=True, default=None)
    valid_until = serializers.DateField(required=False, allow_null=True, default=None)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("valid_from"), attrs.get("valid_until")
        if start is not None and end is not None and end < start:
            raise serializers.ValidationError({"valid_until": ["Before valid_from."]})
        return attrs


class HolderConfig(ValidityDates):
    user = serializers.SlugRelatedField(slug_field="username", queryset=User.objects.all())

    def to_internal_value(self, data: Any) -> Any:
        # A bare username (the file's first format) holds the qualification without limits.
        return super().to_internal_value({"user": data} if isinstance(data, str) else data)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return {
            "user": instance.user.get_username(),
            "valid_from": instance.valid_from.isoformat() if instance.valid_from else None,
            "valid_until": instance.valid_until.isoformat() if instance.valid_until else None,
        }


class QualificationConfig(serializers.ModelSerializer):
    holders = HolderConfig(
        many=True, required=False, source="holds",
        help_text="Who holds it: `{user, valid_from, valid_until}` (dates may be null), or a bare username.",
    )  # fmt: skip

    class Meta:
        model = Qualification
        fields = ["slug", "name", "holders"]
        extra_kwargs: ClassVar[dict[str, Any]] = {"slug": {"validators": []}}

    def to_representation(self, instance: Qualification) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["holders"] = sorted(data["holders"], key=lambda h: h["user"])
        return data

    def validate_holders(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = [h["user"].get_username() for h in value]
        if len(names) != len(set(names)):
            raise serializers.ValidationError("A person is listed twice.")
        return value

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> Qualification:
        holds = validated_data.pop("holds", [])
        qualification = super().create(validated_data)
        set_holders(qualification, holds)
        return qualification

    @transaction.atomic
    def update(self, instance: Qualification, validated_data: dict[str, Any]) -> Qualification:
        holds = validated_data.pop("holds", None)
        qualification = super().update(instance, validated_data)
        if holds is not None:
            set_holders(qualification, holds)
            # The holds prefetched with the instance are stale now; the caller exports it again.
            getattr(qualification, "_prefetched_objects_cache", {}).pop("holds", None)
        return qualification


def set_holders(qualification: Qualification, holds: list[dict[str, Any]]) -> None:
    """Make `holds` ({user, valid_from, valid_until}) the qualification's holders; a holder who stays keeps
    their row. Calling it twice with the same holds writes nothing the second time."""
    wanted = {h["user"].pk: (h.get("valid_from"), h.get("valid_until")) for h in holds}
    QualificationHolder.objects.filter(qualification=qualification).exclude(user_id__in=wanted).delete()
    present = {row.user_id: row for row in QualificationHolder.objects.filter(qualification=qualification)}
    for pk, (start, end) in sorted(wanted.items()):
        row = present.get(pk)
        if row is None:
            QualificationHolder.objects.create(
                qualification=qualification, user_id=pk, valid_from=start, valid_until=end
            )
        elif (row.valid_from, row.valid_until) != (start, end):
            row.valid_from, row.valid_until = start, end
            row.save(update_fields=["valid_from", "valid_until"])


class TeamConfig(serializers.ModelSerializer):
    domains = serializers.SlugRelatedField(slug_field="slug", queryset=Domain.objects.all(), many=True)
    manager = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.all(), allow_null=True, required=False
    )
    members = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.all(), many=True, required=False
    )

    class Meta:
        model = Team
        fields = ["slug", "name", "tier", "email", "domains", "manager", "members"]
        extra_kwargs: ClassVar[dict[str, Any]] = {"slug": {"validators": []}}

    def to_representation(self, instance: Team) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["domains"] = sorted(data["domains"])
        data["members"] = sorted(data["members"])
        return data

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> Team:
        members = validated_data.pop("members", [])
        team = super().create(validated_data)
        self._members(team, members)
        return team

    @transaction.atomic
    def update(self, instance: Team, validated_data: dict[str, Any]) -> Team:
        members = validated_data.pop("members", None)
        if "domains" in validated_data:
            check_team_keeps_domains(instance, validated_data["domains"])
        team = super().update(instance, validated_data)
        if members is not None:
            self._members(team, members)
        return team

    def _members(self, team: Team, members: list[Any]) -> None:
        """Memberships through their own rows: a member who stays keeps the date they joined."""
        wanted = {user.pk for user in members}
        Membership.objects.filter(team=team).exclude(user_id__in=wanted).delete()
        present = set(Membership.objects.filter(team=team).values_list("user_id", flat=True))
        Membership.objects.bulk_create(Membership(team=team, user_id=pk) for pk in sorted(wanted - present))


def check_team_keeps_domains(team: Team, domains: Iterable[Domain]) -> None:
    """Refuse to take a domain away from a team while one of its open incidents is of that domain: the
    incident would sit with a team that may no longer see it (restricted domains) or handle it."""
    from .models import Incident

    keep = {d.pk for d in domains}
    stranded = (
        Incident.objects.open()
        .filter(team=team, domain__isnull=False)
        .exclude(domain_id__in=keep)
        .order_by("domain__slug", "id")
        .values_list("domain__slug", "id")
    )
    first = list(stranded[:50])
    if first:
        slugs = sorted({slug for slug, _ in first})
        raise ConfigConflict(
            f"Team {team.slug} still has open incidents of {', '.join(slugs)} (e.g."
            f" {Incident(pk=first[0][1]).reference}); move them to another team before removing the domain."
        )


CATEGORY_PATH_RE = r"^[-a-zA-Z0-9_]+(/[-a-zA-Z0-9_]+)*$"


class CategoryConfig(serializers.ModelSerializer):
    domain = serializers.SlugRelatedField(slug_field="slug", queryset=Domain.objects.all())
    path = serializers.RegexField(
        CATEGORY_PATH_RE,
        max_length=400,
        help_text="The slash path (`network/vpn`); changing it renames or moves the category and its subtree.",
    )
    default_team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), allow_null=True, required=False
    )
    required_qualification = serializers.SlugRelatedField(
        slug_field="slug", queryset=Qualification.objects.all(), allow_null=True, required=False
    )
    active = serializers.BooleanField(
        required=False,
        default=True,
        help_text="False: no longer offered for new reports (nor its subcategories); kept on old incidents.",
    )

    class Meta:
        model = Category
        fields = ["domain", "path", "name", "default_team", "required_qualification", "active"]
        validators: ClassVar[list[Any]] = []  # `validate` checks the path is free, naming `path`

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance: Category | None = self.instance
        domain = attrs.get("domain", instance.domain if instance is not None else None)
        moved_domain = instance is not None and "domain" in attrs and attrs["domain"].pk != instance.domain_id
        if (
            moved_domain
            and instance is not None
            and (instance.incidents.exists() or instance.children.exists())
        ):
            raise serializers.ValidationError(
                {"domain": ["A category with incidents or subcategories keeps its domain."]}
            )
        path = attrs.pop("path", None)
        if path is None:
            parent = instance.parent if instance is not None else None
            if attrs.get("active") and parent is not None and not parent.active:
                raise serializers.ValidationError({"active": [f"The parent {parent.path!r} is inactive."]})
            return attrs
        parent_path, _, slug = path.rpartition("/")
        attrs["slug"] = slug
        attrs["parent"] = None
        if parent_path:
            attrs["parent"] = Category.objects.filter(domain=domain, path=parent_path).first()
            if attrs["parent"] is None:
                raise serializers.ValidationError({"path": [f"The parent {parent_path!r} must come first."]})
        if instance is not None and path != instance.path:
            if path.startswith(f"{instance.path}/"):
                raise serializers.ValidationError({"path": ["A category cannot move under itself."]})
            if Category.objects.filter(domain=domain, path=path).exclude(pk=instance.pk).exists():
                raise serializers.ValidationError({"path": [f"{path!r} already exists."]})
        elif instance is None and Category.objects.filter(domain=domain, path=path).exists():
            raise serializers.ValidationError({"path": [f"{path!r} already exists."]})
        if attrs.get("active", True) and attrs["parent"] is not None and not attrs["parent"].active:
            raise serializers.ValidationError({"active": [f"The parent {parent_path!r} is inactive."]})
        return attrs

    @transaction.atomic
    def update(self, instance: Category, validated_data: dict[str, Any]) -> Category:
        old_path = instance.path
        category = super().update(instance, validated_data)
        if category.path != old_path:
            _repath_children(category)
        if not category.active:
            # Deactivating a branch hides all of it: a subcategory of an inactive one is not offered either.
            descendants = Category.objects.filter(
                domain=category.domain, path__startswith=f"{category.path}/"
            )
            descendants.filter(active=True).update(active=False)
        return category


def _repath_children(category: Category) -> None:
    """After a rename or move, every descendant's path follows (the incidents keep their category rows)."""
    for child in category.children.all():
        child.parent = category
        child.save(update_fields=["path"])
        _repath_children(child)


def _category_key(item: dict[str, Any]) -> str:
    return f"{item.get('domain')}:{item.get('path')}"


DOMAINS = SerializedSection("domains", DomainConfig, Domain.objects.all, "slug", delete_missing=False)
QUALIFICATIONS = SerializedSection(
    "qualifications",
    QualificationConfig,
    lambda: Qualification.objects.prefetch_related(
        Prefetch("holds", queryset=QualificationHolder.objects.select_related("user"))
    ),
    "slug",
)
TEAMS = SerializedSection("teams", TeamConfig, Team.objects.all, "slug")


def export_domains() -> list[dict[str, Any]]:
    return DOMAINS.export()


def apply_domains(items: Any, *, dry_run: bool = False) -> list[str]:
    """Domains are added or edited, never removed here: the desk's own three are seeded data."""
    return DOMAINS.apply(items, dry_run=dry_run)


def export_qualifications() -> list[dict[str, Any]]:
    return QUALIFICATIONS.export()


def apply_qualifications(items: Any, *, dry_run: bool = False) -> list[str]:
    return QUALIFICATIONS.apply(items, dry_run=dry_run)


def export_teams() -> list[dict[str, Any]]:
    return TEAMS.export()


def apply_teams(items: Any, *, dry_run: bool = False) -> list[str]:
    return TEAMS.apply(items, dry_run=dry_run)


def _categories() -> models.QuerySet[Category]:
    return Category.objects.select_related("domain", "default_team", "required_qualification")


def export_categories() -> list[dict[str, Any]]:
    """Parents before their children (ordered by domain, then path)."""
    return [plain(CategoryConfig(c).data) for c in _categories().order_by("domain__slug", "path")]


def apply_categories(items: Any, *, dry_run: bool = False) -> list[str]:
    if not isinstance(items, list):
        raise ValueError("categories: a list.")
    changes: list[str] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"categories[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{path}: an object.")
            continue
        key = _category_key(item)
        if key in seen:
            errors.append(f"{path}.path: {key!r} is already categories[{seen[key]}].")
            continue
        seen[key] = i
        instance = _categories().filter(domain__slug=item.get("domain"), path=item.get("path")).first()
        before = plain(CategoryConfig(instance).data) if instance is not None else None
        serializer = CategoryConfig(instance, data=item)
        if not serializer.is_valid():
            errors += error_lines(path, serializer.errors)
            continue
        change = save_if_changed(
            serializer, before, lambda c: plain(CategoryConfig(c).data), f"category {key}"
        )
        if change:
            changes.append(change)
    if errors:
        raise ValueError("\n".join(errors))

    def missing() -> list[Category]:
        # Children first, so that a removed branch goes leaf by leaf.
        return [c for c in _categories().order_by("-path") if f"{c.domain.slug}:{c.path}" not in seen]

    return changes + remove_later("categories", missing, lambda c: f"{c.domain.slug}:{c.path}")
