"""Forms of the web interface. They parse input; the domain functions decide and write."""

from __future__ import annotations

import copy
import secrets
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.core import signing
from django.db import transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from . import hooks
from .models import Category, Domain, Incident, Membership, QualificationHolder, Team
from .timeline import Actor

User = get_user_model()
MAX_TEXT = 100_000
FORM_TOKEN_SALT = "incidents.report-form"  # noqa: S105 (a salt names a purpose; it is no secret)
FORM_TOKEN_MAX_AGE = 24 * 3600  # seconds: a report written over a long shift still goes through

# The reporter describes scope and urgency in their own words; the desk maps them to the matrix.
AFFECTED_CHOICES = [
    ("", "Choose one"),
    (Incident.Impact.USER, "Just me, or one person"),
    (Incident.Impact.DEPARTMENT, "A team, a ward or a department"),
    (Incident.Impact.ORGANISATION, "Everyone / the whole organisation"),
]
URGENCY_CHOICES = [
    ("", "Choose one"),
    (Incident.Urgency.HIGH, "Now: work has stopped or someone is at risk"),
    (Incident.Urgency.MEDIUM, "Soon: work is impaired but there is a workaround"),
    (Incident.Urgency.LOW, "It can wait"),
]


class CategoryChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Category) -> str:
        return f"{obj.name} ({obj.path})"


def categories_of(domain: Domain | None) -> QuerySet[Category]:
    if domain is None:
        return Category.objects.none()
    return Category.objects.filter(active=True, domain=domain).select_related("domain").order_by("path")


class ReportForm(forms.Form):
    """The single point of contact (SPEC section 1): anyone may report, signed in or with an e-mail."""

    title = forms.CharField(max_length=200, label="What went wrong, in one line")
    description = forms.CharField(
        max_length=MAX_TEXT,
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        label="What happened",
        help_text="When and where, what you saw, what you already tried. Markdown is allowed.",
    )
    domain = forms.ModelChoiceField(
        queryset=Domain.objects.all(), required=False, empty_label="I don't know", label="Kind of incident"
    )
    category = CategoryChoiceField(
        queryset=Category.objects.none(), required=False, empty_label="I don't know", label="Category"
    )
    outcome = forms.ChoiceField(
        choices=[("", "I don't know"), *Incident.Outcome.choices],
        required=False,
        widget=forms.RadioSelect,
        label="What was the outcome",
    )
    harm_level = forms.ChoiceField(
        choices=[("", "I don't know"), *Incident.HarmLevel.choices],
        required=False,
        label="Patient impact (medical incidents)",
    )
    affected = forms.TypedChoiceField(
        choices=AFFECTED_CHOICES, coerce=int, required=False, empty_value=None, label="Who is affected"
    )
    urgency = forms.TypedChoiceField(
        choices=URGENCY_CHOICES, coerce=int, required=False, empty_value=None, label="How urgent is it"
    )
    attachment = forms.FileField(required=False, label="Attach a file (screenshot, log, document)")
    confidential = forms.BooleanField(
        required=False,
        label="Report confidentially",
        help_text="Responders see the incident but not who reported it.",
    )
    reporter_email = forms.EmailField(  # an anonymous reporter's: a signed-in reporter's form has none
        label="Your e-mail address", help_text="We send the tracking link there."
    )
    # A one-time token per rendering of the form (signed, so only the desk issues them): the view stores it
    # with the incident, and a second submit of the same form shows that incident instead of making another.
    form_token = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    # Honeypot: hidden from people (CSS and aria-hidden); bots that fill every field give themselves away.
    website = forms.CharField(
        required=False,
        label="Leave this empty",
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    def __init__(self, *args: Any, user: Actor = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        if user is not None and user.is_authenticated:
            del self.fields["reporter_email"]
        # The one field a form changes (its choices follow the domain chosen), so the one copied per form.
        category = copy.deepcopy(self.fields["category"])
        category.queryset = categories_of(self._selected_domain())  # type: ignore[attr-defined]
        self.fields["category"] = category

    def _selected_domain(self) -> Domain | None:
        key = self.data.get("domain") if self.is_bound else self.initial.get("domain")
        if not key:
            return None
        try:
            return Domain.objects.filter(pk=int(key)).first()
        except (TypeError, ValueError):
            return None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        domain, harm = data.get("domain"), data.get("harm_level")
        if harm and not (domain is not None and domain.requires_harm_level):
            data["harm_level"] = ""
        return data

    def clean_form_token(self) -> str:
        token = read_form_token(self.cleaned_data.get("form_token", ""))
        if token is None:
            raise forms.ValidationError(
                "This form has expired or was not issued by the desk. Nothing was sent: "
                "check your report below and send it again.",
                code="form_token",
            )
        return token

    @property
    def page_token(self) -> str:
        """The token to render in the page: the one sent, while it is still good; else a new one."""
        sent = self.data.get("form_token", "") if self.is_bound else ""
        if sent and read_form_token(sent) is not None:
            return str(sent)
        return new_form_token()

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get("website"))


class _SharedFields(dict[str, forms.Field]):
    """A form's fields that `Form.__init__`'s deep copy (one per form) leaves shared: the copy is a new dict
    of the same fields. Only for fields that no form changes once the class is made."""

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, forms.Field]:
        return dict(self)


# Deep-copying every field for each form took a tenth of a report's CPU; ReportForm copies only its category.
ReportForm.base_fields = _SharedFields(ReportForm.base_fields)


def new_form_token() -> str:
    """A signed, time-stamped random value for one rendering of the report form."""
    return signing.TimestampSigner(salt=FORM_TOKEN_SALT).sign(secrets.token_urlsafe(32))


def read_form_token(value: str) -> str | None:
    """The random part of a token the desk issued less than FORM_TOKEN_MAX_AGE ago; None otherwise."""
    try:
        token = signing.TimestampSigner(salt=FORM_TOKEN_SALT).unsign(value, max_age=FORM_TOKEN_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return None
    return token if 20 <= len(token) <= 64 else None


class OutboxPasswordResetForm(PasswordResetForm):
    """Django's password reset, with its mail written to the outbox like every other mail the desk sends.

    The link is built from SITE_URL, never from the request's Host header. Requested twice, it is two
    mails (each has its own token); the same token is queued once.
    """

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        site = urlsplit(settings.SITE_URL)
        context = {**context, "protocol": site.scheme or "https", "domain": site.netloc or context["domain"]}
        subject = " ".join(render_to_string(subject_template_name, context).splitlines())
        body = render_to_string(email_template_name, context)
        user = context["user"]
        with transaction.atomic():
            outbox = hooks.outbox()
            ids = outbox.queue_message(
                event="password_reset",
                cause=f"password-reset:{user.pk}:{context['token']}",
                address=to_email,
                subject=subject,
                body=body,
                user_id=user.pk,
            )
            outbox.deliver_after_commit(ids)


class ReplyForm(forms.Form):
    body = forms.CharField(max_length=50_000, widget=forms.Textarea(attrs={"rows": 4}), label="Your reply")


class ReopenForm(forms.Form):
    reason = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 3}), label="What is still wrong"
    )


class AttachForm(forms.Form):
    file = forms.FileField(label="File")
    public = forms.BooleanField(required=False, initial=True, label="The reporter may see it")


class CommentForm(forms.Form):
    body = forms.CharField(
        max_length=50_000,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Comment",
        help_text="Markdown. Internal notes are never shown to the reporter.",
    )
    public = forms.TypedChoiceField(
        choices=[("0", "Internal note"), ("1", "Public reply (the reporter sees it)")],
        coerce=lambda v: v == "1",
        initial="0",
        widget=forms.RadioSelect,
        label="Visibility",
    )


class EditForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    title = forms.CharField(max_length=200)
    description = forms.CharField(
        max_length=MAX_TEXT, required=False, widget=forms.Textarea(attrs={"rows": 5})
    )
    impact = forms.TypedChoiceField(
        choices=[("", "—"), *Incident.Impact.choices], coerce=int, required=False, empty_value=None
    )
    urgency = forms.TypedChoiceField(
        choices=[("", "—"), *Incident.Urgency.choices], coerce=int, required=False, empty_value=None
    )
    outcome = forms.ChoiceField(choices=[("", "—"), *Incident.Outcome.choices], required=False)


# --- lifecycle actions: exactly the inputs of SPEC section 2 ----------------------------------------


def responders() -> QuerySet[Any]:
    return User.objects.filter(is_active=True, memberships__isnull=False).distinct().order_by("username")


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        full = obj.get_full_name()
        return f"{full} ({obj.get_username()})" if full else obj.get_username()


class ActionForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1, required=False)

    def domain_kwargs(self) -> dict[str, Any]:
        """The cleaned inputs as the lifecycle function takes them."""
        return {k: v for k, v in self.cleaned_data.items() if v is not None or k == "assignee"}


class TaggedSelect(forms.Select):
    """A select whose options carry data attributes (`tag(instance) -> attrs`), so that the page can filter
    and order them as the other fields change (static/js/desk.js, the classify form)."""

    def __init__(self, *args: Any, tag: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tag = tag

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        instance = getattr(value, "instance", None)
        if instance is not None and self.tag is not None:
            option["attrs"].update(self.tag(instance))
        return option


class ClassifyForm(ActionForm):
    """Categories follow the chosen domain, assignees the chosen team (the qualified for the category
    first), the patient impact shows for medical incidents only, and the priority the matrix will give
    shows before submitting. The page does it as the fields change; the lifecycle checks it again."""

    domain = forms.ModelChoiceField(
        queryset=Domain.objects.all(),
        widget=TaggedSelect(tag=lambda d: {"data-harm": "1" if d.requires_harm_level else "0"}),
    )
    category = CategoryChoiceField(
        queryset=Category.objects.select_related("domain"),
        widget=TaggedSelect(
            tag=lambda c: {
                "data-domain": c.domain_id,
                "data-qualification": c.required_qualification_id or "",
            }
        ),
    )
    impact = forms.TypedChoiceField(choices=Incident.Impact.choices, coerce=int)
    urgency = forms.TypedChoiceField(choices=Incident.Urgency.choices, coerce=int)
    team = forms.ModelChoiceField(queryset=Team.objects.all())
    assignee = UserChoiceField(queryset=User.objects.none(), required=False, empty_label="Nobody yet")
    outcome = forms.ChoiceField(choices=[("", "—"), *Incident.Outcome.choices], required=False)
    harm_level = forms.ChoiceField(
        choices=[("", "—"), *Incident.HarmLevel.choices], required=False, label="Patient impact"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = responders()  # type: ignore[attr-defined]
        teams: dict[int, list[str]] = {}
        for user_id, team_id in Membership.objects.values_list("user_id", "team_id"):
            teams.setdefault(user_id, []).append(str(team_id))
        quals: dict[int, list[str]] = {}
        # Qualifications held today (a lapsed one does not qualify: lifecycle._check_qualified).
        for user_id, qual_id in QualificationHolder.objects.valid_on(timezone.localdate()).values_list(
            "user_id", "qualification_id"
        ):
            quals.setdefault(user_id, []).append(str(qual_id))
        self.fields["assignee"].widget = TaggedSelect(
            tag=lambda u: {
                "data-teams": " ".join(teams.get(u.pk, [])),
                "data-quals": " ".join(quals.get(u.pk, [])),
            }
        )
        self.fields["assignee"].widget.choices = self.fields["assignee"].choices  # type: ignore[attr-defined]


class AcknowledgeForm(ActionForm):
    pass


class EscalateForm(ActionForm):
    team = forms.ModelChoiceField(queryset=Team.objects.all(), label="To team")
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    assignee = UserChoiceField(queryset=User.objects.none(), required=False, empty_label="Nobody yet")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = responders()  # type: ignore[attr-defined]


class AssignForm(ActionForm):
    """Hand the incident to a colleague or another team; the state stays as it is."""

    assignee = UserChoiceField(queryset=User.objects.none(), required=False, empty_label="Nobody yet")
    team = forms.ModelChoiceField(
        queryset=Team.objects.all(), required=False, empty_label="Same team", label="Transfer to team"
    )
    note = forms.CharField(max_length=2000, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = responders()  # type: ignore[attr-defined]

    def domain_kwargs(self) -> dict[str, Any]:
        data = super().domain_kwargs()
        data["team"] = self.cleaned_data.get("team")
        return data


class HoldForm(ActionForm):
    reason = forms.ChoiceField(choices=Incident.HoldReason.choices)
    note = forms.CharField(max_length=2000, required=False)


class ResumeForm(ActionForm):
    pass


class ResolveForm(ActionForm):
    summary = forms.CharField(
        max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 3}), label="Resolution summary"
    )


class FileReportForm(forms.Form):
    """A report filed with an authority for one of the incident's reporting targets (escalation.filings
    checks it again: a known target, a reference, a time not in the future nor before the incident)."""

    target = forms.ChoiceField(label="Reporting target")
    reference = forms.CharField(max_length=200, label="Authority's reference")
    filed_at = forms.DateTimeField(
        required=False,
        label="Filed at (blank: now)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
    )
    note = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Note"
    )

    def __init__(self, *args: Any, targets: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [(name, name) for name in targets]  # type: ignore[attr-defined]


class ReopenActionForm(ActionForm):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class CloseForm(ActionForm):
    cause = forms.CharField(max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 2}))
    measures = forms.CharField(
        max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 2}), label="Measures taken"
    )
    resolution_code = forms.ChoiceField(choices=Incident.ResolutionCode.choices)


class CancelForm(ActionForm):
    reason = forms.ChoiceField(choices=Incident.CancelReason.choices)
    duplicate_of = forms.CharField(
        max_length=20,
        required=False,
        label="Duplicate of",
        help_text="The surviving incident's reference (INC- and six digits)",
    )
    note = forms.CharField(max_length=2000, required=False)

    def domain_kwargs(self) -> dict[str, Any]:
        data = super().domain_kwargs()
        data.pop("duplicate_of", None)  # resolved against the user's visibility by the view
        return data


ACTION_FORMS: dict[str, type[ActionForm]] = {
    "classify": ClassifyForm,
    "acknowledge": AcknowledgeForm,
    "escalate": EscalateForm,
    "hold": HoldForm,
    "resume": ResumeForm,
    "resolve": ResolveForm,
    "reopen": ReopenActionForm,
    "close": CloseForm,
    "cancel": CancelForm,
    "assign": AssignForm,
}


class BulkForm(forms.Form):
    """One action on many incidents; each goes through the lifecycle on its own."""

    ACTIONS = [("assign", "Assign"), ("classify", "Classify"), ("cancel", "Cancel")]

    ids = forms.TypedMultipleChoiceField(coerce=int, choices=[])
    bulk_action = forms.ChoiceField(choices=ACTIONS, label="Action")
    assignee = UserChoiceField(queryset=User.objects.none(), required=False, empty_label="Me")
    domain = forms.ModelChoiceField(queryset=Domain.objects.all(), required=False)
    category = CategoryChoiceField(queryset=Category.objects.select_related("domain"), required=False)
    impact = forms.TypedChoiceField(
        choices=[("", "Impact"), *Incident.Impact.choices], coerce=int, required=False, empty_value=None
    )
    urgency = forms.TypedChoiceField(
        choices=[("", "Urgency"), *Incident.Urgency.choices], coerce=int, required=False, empty_value=None
    )
    team = forms.ModelChoiceField(queryset=Team.objects.all(), required=False)
    cancel_reason = forms.ChoiceField(
        choices=[("", "Reason"), *Incident.CancelReason.choices], required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = responders()  # type: ignore[attr-defined]
        raw = self.data.getlist("ids") if hasattr(self.data, "getlist") else []
        self.fields["ids"].choices = [(v, v) for v in raw]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        action = data.get("bulk_action")
        if action == "classify":
            for field in ("domain", "category", "impact", "urgency", "team"):
                if data.get(field) in (None, ""):
                    self.add_error(field, "Required to classify.")
        if action == "cancel" and not data.get("cancel_reason"):
            self.add_error("cancel_reason", "Required to cancel.")
        return data


class FollowUpForm(forms.Form):
    """A problem's follow-up action (incidents.problems.add_follow_up)."""

    title = forms.CharField(max_length=200, label="What is to be done")
    owner = UserChoiceField(queryset=User.objects.none(), label="Owner")
    due_date = forms.DateField(label="Due", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = responders()  # type: ignore[attr-defined]


class SaveViewForm(forms.Form):
    name = forms.CharField(max_length=60, label="Name of this view")
    query = forms.CharField(max_length=1000, required=False, widget=forms.HiddenInput)
