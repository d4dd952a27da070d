from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "intake"
    verbose_name = "Intake (monitoring events and inbound e-mail)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from incidents import hooks

        from .events import on_incident_classified

        # An acknowledge or resolve that came while a monitoring incident was received is applied once it
        # is classified (intake.events.apply_held), on the lifecycle's own announcement.
        hooks.connect(hooks.Event.CLASSIFIED, on_incident_classified)
