from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0019_cleared_not_responded_i16"),
        ("incidents", "0019_saved_view_sla_i11"),
    ]

    operations = []
