from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "reporting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The report reads the per-day figures where they apply (reporting.daily); figures.py does not import
        # daily.py, which builds on it.
        from . import daily, figures

        figures.provide_day_figures(daily.summary_parts)
