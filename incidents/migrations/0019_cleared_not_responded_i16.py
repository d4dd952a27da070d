"""An automatic resolve is no response (issue 16): incidents whose response clock ended as cleared kept the
machine's acknowledge as their `responded_at`. Unset it where it is exactly that acknowledge (no actor)."""

from django.db import migrations
from django.db.models import Exists, OuterRef


def forwards(apps, schema_editor):
    Incident = apps.get_model("incidents", "Incident")
    TimelineEntry = apps.get_model("incidents", "TimelineEntry")
    machine_ack = TimelineEntry.objects.filter(
        incident_id=OuterRef("pk"), kind="state_changed", action="acknowledge", actor__isnull=True,
        at=OuterRef("responded_at"),
    )  # fmt: skip
    Incident.objects.filter(sla_response="cleared", responded_at__isnull=False).filter(
        Exists(machine_ack)
    ).update(responded_at=None)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0018_merge_mail")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
