"""Snapshots are immutable in the database itself, not only in Python: a trigger refuses
any UPDATE of a snapshot row, on PostgreSQL and SQLite alike."""

from django.db import migrations

POSTGRES = """
CREATE OR REPLACE FUNCTION curation_snapshot_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'snapshot % is immutable; create a new snapshot instead', OLD.id;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER curation_snapshot_no_update BEFORE UPDATE ON curation_snapshot
    FOR EACH ROW EXECUTE FUNCTION curation_snapshot_immutable();
"""
POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS curation_snapshot_no_update ON curation_snapshot;
DROP FUNCTION IF EXISTS curation_snapshot_immutable();
"""
SQLITE = """
CREATE TRIGGER curation_snapshot_no_update BEFORE UPDATE ON curation_snapshot
BEGIN
    SELECT RAISE(ABORT, 'snapshot is immutable; create a new snapshot instead');
END;
"""
SQLITE_REVERSE = "DROP TRIGGER IF EXISTS curation_snapshot_no_update;"


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    sql = POSTGRES if schema_editor.connection.vendor == "postgresql" else SQLITE
    schema_editor.execute(sql, params=None)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    sql = POSTGRES_REVERSE if schema_editor.connection.vendor == "postgresql" else SQLITE_REVERSE
    schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("curation", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
