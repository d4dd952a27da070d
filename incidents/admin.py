from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from . import problems, services
from .errors import InvalidTransition, StaleVersion
from .models import (
    Attachment,
    Category,
    Comment,
    Domain,
    FollowUpAction,
    Incident,
    Membership,
    Problem,
    Team,
    TimelineEntry,
)
from .permissions import AuditedAdminMixin, ReadOnlyAdminMixin


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "restricted", "requires_harm_level"]
    list_filter = ["restricted"]
    search_fields = ["slug", "name"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "tier", "manager", "email"]
    list_filter = ["tier", "domains"]
    search_fields = ["slug", "name"]
    filter_horizontal = ["domains"]
    inlines = [MembershipInline]
    autocomplete_fields = ["manager"]


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["path", "domain", "name", "default_team"]
    list_filter = ["domain"]
    search_fields = ["path", "name"]
    autocomplete_fields = ["parent", "default_team"]
    readonly_fields = ["path"]


def _all_but(model: type[models.Model], editable: tuple[str, ...]) -> list[str]:
    """Every field of the model except those the domain's function edits: those are read-only here."""
    return [
        f.name
        for f in model._meta.get_fields()
        if getattr(f, "concrete", False) and not f.auto_created and f.editable and f.name not in editable
    ]


class VersionedAdminForm(forms.ModelForm):
    """Carries the version the admin read: saving over someone else's change is refused, not applied."""

    read_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["read_version"].initial = self.instance.version

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        read = data.get("read_version")
        if self.instance.pk is not None:
            current = (
                type(self.instance).objects.filter(pk=self.instance.pk).values_list("version", flat=True)
            )
            stored = current.first()
            if read is None or read != stored:
                raise forms.ValidationError(
                    f"This record was changed by someone else since you opened it (you read version {read}, it "
                    f"is now at version {stored}). Nothing was saved: reload the page and make your change again."
                )
        return data


class DomainServiceAdmin(admin.ModelAdmin):
    """An admin whose saves and deletes go through the domain's functions: `save_model` stores nothing
    itself, and a refusal of the domain (stale version, frozen record, a delete the API refuses) is shown
    as a message with nothing saved."""

    def changed_values(self, form: forms.ModelForm, fields: tuple[str, ...]) -> dict[str, Any]:
        return {name: form.cleaned_data[name] for name in form.changed_data if name in fields}

    def refuse(self, request: HttpRequest, exc: Exception) -> None:
        text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        self.message_user(request, f"Nothing was saved: {text}", level=messages.ERROR)
        request._domain_refused = True  # type: ignore[attr-defined]  # read by response_change/add

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        if getattr(request, "_domain_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        if getattr(request, "_domain_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_add(request, obj, post_url_continue)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if getattr(request, "_domain_refused", False):
            return None
        return super().log_change(request, obj, message)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if getattr(request, "_domain_refused", False):
            return None
        return super().log_addition(request, obj, message)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a bulk delete would bypass the refusals of delete_model
        return actions


class FollowUpActionInline(admin.TabularInline):
    """New follow-ups are added through incidents.problems.add_follow_up; an existing one can only be
    marked done (complete_follow_up). None is deleted: they are the history of the problem."""

    model = FollowUpAction
    extra = 1
    autocomplete_fields = ["owner"]
    fields = ["title", "owner", "due_date", "done_at"]
    can_delete = False


@admin.register(Problem)
class ProblemAdmin(DomainServiceAdmin):
    """Records change here as through the API (incidents.problems): the version is checked, the state moves
    only along the problem's table (the API's `state` action), so it is read-only here, and a problem the
    API would not delete (with follow-ups, or past `open`) is not deleted here either."""

    form = VersionedAdminForm
    list_display = ["title", "state", "known_error", "category", "team", "created_at"]
    list_filter = ["state", "known_error", "team"]
    search_fields = ["title", "root_cause"]
    autocomplete_fields = ["category", "team", "owner"]
    inlines = [FollowUpActionInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return _all_but(Problem, problems.EDITABLE_FIELDS)

    def save_model(self, request: HttpRequest, obj: Problem, form: forms.ModelForm, change: bool) -> None:
        try:
            if change:
                saved = problems.edit_problem(
                    Problem.objects.get(pk=obj.pk),
                    actor=request.user,
                    version=form.cleaned_data.get("read_version"),
                    **self.changed_values(form, problems.EDITABLE_FIELDS),
                )
            else:
                values: dict[str, Any] = {
                    name: form.cleaned_data.get(name) for name in problems.EDITABLE_FIELDS
                }
                saved = problems.create_problem(actor=request.user, **values)
        except (StaleVersion, InvalidTransition, ValidationError, PermissionDenied) as exc:
            self.refuse(request, exc)
            return
        obj.pk, obj.version, obj.state = saved.pk, saved.version, saved.state

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        # What the admin's change message reads (formset.save() is not called: the domain writes).
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if getattr(request, "_domain_refused", False):
            return
        problem = form.instance
        try:
            for inline in formset.forms:
                if not inline.has_changed() or not hasattr(inline, "cleaned_data"):
                    continue
                data = inline.cleaned_data
                existing = data.get("id")
                if existing is None:
                    formset.new_objects.append(
                        problems.add_follow_up(
                            problem, actor=request.user, title=data.get("title") or "", owner=data.get("owner"),
                            due_date=data.get("due_date"),
                        )
                    )  # fmt: skip
                elif {"title", "owner", "due_date"} & set(inline.changed_data):
                    raise ValidationError(
                        "A follow-up keeps its title, owner and due date; mark it done or add a new one."
                    )
                elif data.get("done_at") and existing.done_at is None:
                    done = problems.complete_follow_up(existing, actor=request.user)
                    formset.changed_objects.append((done, ["done_at"]))
        except (InvalidTransition, ValidationError, PermissionDenied) as exc:
            self.refuse(request, exc)

    def has_delete_permission(self, request: HttpRequest, obj: Problem | None = None) -> bool:
        if obj is not None and (
            obj.state not in (Problem.State.PROPOSED, Problem.State.OPEN) or obj.follow_ups.exists()
        ):
            return False  # what problems.delete_problem refuses (close it instead)
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: Problem) -> None:
        problems.delete_problem(obj, actor=request.user)


class TimelineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TimelineEntry
    fields = ("at", "kind", "action", "actor", "public", "data")
    readonly_fields = ("at", "kind", "action", "actor", "public", "data")
    extra = 0
    can_delete = False


@admin.register(Incident)
class IncidentAdmin(AuditedAdminMixin, DomainServiceAdmin):
    """Corrections of an incident go through incidents.services.correct_incident: the version is checked,
    the change is a timeline entry and a new version, and the description's HTML is rendered again. The
    state, its milestones, the team and the assignee change only through the lifecycle (read-only here);
    incidents are never deleted, and a closed or cancelled record is frozen."""

    incident_field = ""
    form = VersionedAdminForm
    list_display = ["reference", "title", "state", "priority", "domain", "team", "assignee", "received_at"]
    list_filter = ["state", "priority", "domain", "team", "channel", "confidential", "outcome"]
    search_fields = ["title", "description", "reporter_email", "external_id"]
    list_select_related = ["domain", "team", "assignee"]
    date_hierarchy = "received_at"
    raw_id_fields = ["category"]
    inlines = [TimelineInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return _all_but(Incident, services.ADMIN_EDITABLE_FIELDS)

    def save_model(self, request: HttpRequest, obj: Incident, form: forms.ModelForm, change: bool) -> None:
        try:
            services.correct_incident(
                Incident.objects.get(pk=obj.pk),
                actor=request.user,
                version=form.cleaned_data.get("read_version") or 0,
                **self.changed_values(form, services.ADMIN_EDITABLE_FIELDS),
            )
        except (StaleVersion, InvalidTransition, ValidationError, PermissionDenied) as exc:
            self.refuse(request, exc)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        for formset in formsets:  # the timeline inline is read-only: nothing related is saved from here
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # incidents are reported (the form, the API, mail, monitoring), not created here

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A closed or cancelled record is frozen, in the admin too.
        return super().has_change_permission(request, obj) and not (obj is not None and obj.is_final)


@admin.register(TimelineEntry)
class TimelineEntryAdmin(AuditedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["incident", "at", "kind", "action", "actor", "public"]
    list_filter = ["kind", "action", "public"]
    search_fields = ["incident__title"]
    list_select_related = ["incident", "actor"]


@admin.register(Comment)
class CommentAdmin(AuditedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["incident", "author", "public", "created_at"]
    list_filter = ["public"]
    search_fields = ["body"]
    list_select_related = ["incident", "author"]


@admin.register(Attachment)
class AttachmentAdmin(AuditedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["filename", "incident", "content_type", "size", "uploaded_by", "created_at"]
    list_filter = ["content_type", "public"]
    search_fields = ["filename", "sha256"]
    list_select_related = ["incident", "uploaded_by"]
