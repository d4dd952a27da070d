"""The domains of SPEC section 3 are data: seeded here, editable by admins."""

from django.db import migrations

DOMAINS = [
    ("it_service", "IT service", False, False),
    ("security", "Information security", True, False),
    ("medical", "Medical and nursing", True, True),
]


def seed(apps, schema_editor):
    Domain = apps.get_model("incidents", "Domain")
    for slug, name, restricted, requires_harm_level in DOMAINS:
        Domain.objects.get_or_create(
            slug=slug,
            defaults={"name": name, "restricted": restricted, "requires_harm_level": requires_harm_level},
        )


class Migration(migrations.Migration):
    dependencies = [("incidents", "0002_postgres_timeline_guard_and_search")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
