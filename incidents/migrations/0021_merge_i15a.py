from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0019_recurrence_i15a"),
        ("incidents", "0020_merge_i11_i16"),
    ]

    operations = []
