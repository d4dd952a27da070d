from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data for `make run` and screenshots: the top layer, which may import every other app."""

    name = "demo"
    verbose_name = "Demo data"
    default_auto_field = "django.db.models.BigAutoField"
