"""The configuration stamp (escalation.models.ConfigStamp) and the triggers that change it.

PostgreSQL: one statement-level trigger per table. SQLite: row-level triggers (it has no others). An
auto-assign rule's turn (`last_assigned`, written at every assignment) does not change the stamp: only its
team and mode do, which is what a reader caches.
"""

from django.db import migrations, models

TABLES = [
    "escalation_slapolicy",
    "escalation_slatarget",
    "escalation_businesscalendar",
    "escalation_escalationpolicy",
    "escalation_escalationstep",
    "escalation_webhookendpoint",
]
AUTO_ASSIGN = "escalation_autoassign"
# An upsert: a table emptied by TRUNCATE (a test's flush) gets its row back at the next configuration write.
BUMP_PG = (
    "INSERT INTO escalation_configstamp (id, token) VALUES (1, (random() * 9.0e18)::bigint) "
    "ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token"
)
BUMP_SQLITE = "INSERT OR REPLACE INTO escalation_configstamp (id, token) VALUES (1, random());"


def forwards(apps, schema_editor):
    # On the migrated database itself: a bare create would go through the router to the default database,
    # which has its row already when the reports database is migrated (tests/test_scaleout.py).
    apps.get_model("escalation", "ConfigStamp").objects.using(schema_editor.connection.alias).create(
        pk=1, token=0
    )
    vendor = schema_editor.connection.vendor
    run = schema_editor.execute
    if vendor == "postgresql":
        run(
            "CREATE OR REPLACE FUNCTION escalation_config_bump() RETURNS trigger AS $$ BEGIN "
            f"{BUMP_PG}; RETURN NULL; END $$ LANGUAGE plpgsql"
        )
        for table in TABLES:
            run(
                f"CREATE TRIGGER {table}_config_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION escalation_config_bump()"
            )
        run(
            f"CREATE TRIGGER {AUTO_ASSIGN}_config_bump AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF mode, "
            f"team_id ON {AUTO_ASSIGN} FOR EACH STATEMENT EXECUTE FUNCTION escalation_config_bump()"
        )
    elif vendor == "sqlite":
        for table in TABLES:
            for op in ("INSERT", "UPDATE", "DELETE"):
                run(
                    f"CREATE TRIGGER {table}_config_bump_{op.lower()} AFTER {op} ON {table} "
                    f"BEGIN {BUMP_SQLITE} END"
                )
        for op in ("INSERT", "UPDATE OF mode, team_id", "DELETE"):
            name = op.split()[0].lower()
            run(
                f"CREATE TRIGGER {AUTO_ASSIGN}_config_bump_{name} AFTER {op} ON {AUTO_ASSIGN} BEGIN {BUMP_SQLITE} END"
            )
    else:  # pragma: no cover
        raise RuntimeError(f"No configuration triggers for {vendor}: add them, or the cache would go stale.")


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for table in [*TABLES, AUTO_ASSIGN]:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_config_bump ON {table}")
        schema_editor.execute("DROP FUNCTION IF EXISTS escalation_config_bump()")
    elif vendor == "sqlite":
        for table in TABLES:
            for op in ("insert", "update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_config_bump_{op}")
        for op in ("insert", "update", "delete"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {AUTO_ASSIGN}_config_bump_{op}")


class Migration(migrations.Migration):
    dependencies = [("escalation", "0005_merge_webhooks_targets")]

    operations = [
        migrations.CreateModel(
            name="ConfigStamp",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("token", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
