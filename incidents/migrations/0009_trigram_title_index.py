"""PostgreSQL only: pg_trgm and a GIN trigram index on the title, for similar past incidents.

incidents.selectors.similar_incidents filters with `title % 'text'`, which this index answers. On SQLite
the extension and the index are skipped, and the selector falls back to shared words. No import of
django.contrib.postgres here: it needs the PostgreSQL driver, which a SQLite install does not have.
"""

from django.db import migrations

INDEX_SQL = (
    "CREATE INDEX IF NOT EXISTS incident_title_trgm_idx ON incidents_incident USING gin (title gin_trgm_ops);"
)
DROP_INDEX_SQL = "DROP INDEX IF EXISTS incident_title_trgm_idx;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm;")
        schema_editor.execute(INDEX_SQL)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_INDEX_SQL)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0008_problems_follow_ups_confirmation_ratings")]

    operations = [migrations.RunPython(forwards, backwards)]
