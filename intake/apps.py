from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_save


class IntakeConfig(AppConfig):
    name = "intake"
    verbose_name = "Intake (monitoring events and inbound e-mail)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from incidents.models import Incident

        from .events import on_incident_classified, on_incident_saved

        # An acknowledge or resolve that came while a monitoring incident was received is applied once it
        # is classified (intake.events.apply_held): on the lifecycle's own announcement where the
        # lifecycle has a hook registry (incidents.hooks), else on the saved row.
        hooks: Any
        try:
            from incidents import hooks  # type: ignore[attr-defined,no-redef,unused-ignore]
        except ImportError:
            hooks = None
        if hooks is not None and hasattr(hooks, "connect"):
            hooks.connect("classified", on_incident_classified)
        else:
            post_save.connect(on_incident_saved, sender=Incident, dispatch_uid="intake-apply-held-events")
