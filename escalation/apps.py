from django.apps import AppConfig


class EscalationConfig(AppConfig):
    name = "escalation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The lifecycle announces, escalation listens: incidents imports nothing from this app.
        from . import configcache, services, webhooks

        configcache.connect()
        services.connect()
        webhooks.connect()
