"""Qualification holders get validity dates: the plain many-to-many's table becomes the table of the through
model QualificationHolder (its rows, ids and unique pair stay), then gains `valid_from` and `valid_until`."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0014_category_active"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="QualificationHolder",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "qualification",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="holds",
                                to="incidents.qualification",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="qualification_holds",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "incidents_qualification_holders",
                        "unique_together": {("qualification", "user")},
                    },
                ),
                migrations.AlterField(
                    model_name="qualification",
                    name="holders",
                    field=models.ManyToManyField(
                        blank=True,
                        related_name="qualifications",
                        through="incidents.QualificationHolder",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="qualificationholder",
            name="valid_from",
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="qualificationholder",
            name="valid_until",
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="qualificationholder",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("valid_from__isnull", True),
                    ("valid_until__isnull", True),
                    ("valid_until__gte", models.F("valid_from")),
                    _connector="OR",
                ),
                name="qualification_holder_dates_ordered",
            ),
        ),
    ]
