"""PostgreSQL only: the timeline refuses UPDATE and DELETE even from SQL, and full-text search gets a GIN index.

On SQLite both are skipped: the ORM guard on TimelineEntry still applies, and search falls back to LIKE.
"""

from django.db import migrations

TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION incidents_timeline_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'incidents_timelineentry is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER incidents_timeline_no_update_delete
    BEFORE UPDATE OR DELETE ON incidents_timelineentry
    FOR EACH ROW EXECUTE FUNCTION incidents_timeline_append_only();
"""
DROP_TRIGGER_SQL = """
DROP TRIGGER IF EXISTS incidents_timeline_no_update_delete ON incidents_timelineentry;
DROP FUNCTION IF EXISTS incidents_timeline_append_only();
"""
# Must stay identical to incidents.selectors.SEARCH_DOCUMENT_SQL so that the planner uses it.
SEARCH_INDEX_SQL = """
CREATE INDEX IF NOT EXISTS incident_fulltext_idx ON incidents_incident USING gin (
    to_tsvector('english'::regconfig, COALESCE("title", '') || ' ' || COALESCE("description", ''))
);
"""
DROP_SEARCH_INDEX_SQL = "DROP INDEX IF EXISTS incident_fulltext_idx;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER_SQL, params=None)
        schema_editor.execute(SEARCH_INDEX_SQL)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGER_SQL)
        schema_editor.execute(DROP_SEARCH_INDEX_SQL)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
