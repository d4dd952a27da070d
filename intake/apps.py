from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "intake"
    verbose_name = "Intake (monitoring events and inbound e-mail)"
    default_auto_field = "django.db.models.BigAutoField"
