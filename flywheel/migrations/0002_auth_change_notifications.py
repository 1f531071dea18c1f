"""On PostgreSQL, notify the token cache's channel whenever a user or an API token changes.

Every connection that caches tokens LISTENs on it (flywheel/postgres/base.py). Statement-level
triggers: one notification per statement (PostgreSQL folds identical ones within a
transaction), from any writer: the ORM, the admin, raw SQL. Inserts need none, since nothing is
cached for a key before its row exists.
"""

from django.db import migrations

MODELS = (("flywheel", "User"), ("authtoken", "Token"))


def _tables(apps):
    return [apps.get_model(app, name)._meta.db_table for app, name in MODELS]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE OR REPLACE FUNCTION flywheel_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM pg_notify('flywheel_auth', TG_TABLE_NAME); RETURN NULL; END $$"
    )
    for table in _tables(apps):
        schema_editor.execute(
            f"CREATE TRIGGER flywheel_auth_changed AFTER UPDATE OR DELETE OR TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION flywheel_auth_changed()"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in _tables(apps):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS flywheel_auth_changed ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS flywheel_auth_changed()")


class Migration(migrations.Migration):
    dependencies = [
        ("flywheel", "0001_initial"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [migrations.RunPython(create, drop)]
