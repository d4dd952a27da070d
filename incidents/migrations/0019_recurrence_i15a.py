from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    dependencies = [("incidents", "0018_merge_mail")]

    operations = [
        # The recurrence probes (incidents.problems): the incidents that count, by category or by domain,
        # newest or oldest first within the window.
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(
                fields=["category", "received_at"],
                name="incident_recurrence_cat_idx",
                condition=Q(problem__isnull=True) & ~Q(state="cancelled"),
            ),
        ),
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(
                fields=["domain", "received_at"],
                name="incident_recurrence_dom_idx",
                condition=Q(problem__isnull=True) & ~Q(state="cancelled"),
            ),
        ),
    ]
