from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0014_audit_event_append_only"),
        ("incidents", "0015_merge_import_cleared"),
    ]

    operations = []
