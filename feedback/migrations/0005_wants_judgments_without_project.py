"""The judgment-count triggers read a missing project's overlap_k as 0, not NULL.

Django's flush (every transactional test on SQLite) deletes table by table with the foreign
keys' checks deferred, so a project's row can go before its judgments'; the 0004 triggers then
wrote NULL into wants_judgments and the flush failed. Same triggers, the k read through
COALESCE: with no project, no judgments are wanted.
"""

from importlib import import_module

from django.db import migrations

_0004 = import_module("feedback.migrations.0004_wants_judgments")
SAFE_K = f"COALESCE({_0004._K}, 0)"
# 0004's SQLite triggers on feedback_judgment; the project's trigger reads NEW.overlap_k.
JUDGMENT_TRIGGERS = _0004.SQLITE_TRIGGERS[:3]


def _judgment_count_sql(k: str) -> tuple[str, list[str]]:
    """0004's PostgreSQL function and SQLite triggers for feedback_judgment, reading k as `k`."""
    function = _0004.POSTGRES.split("CREATE OR REPLACE FUNCTION feedback_project_overlap")[0]
    return function.replace(_0004._K, k), [sql.replace(_0004._K, k) for sql in _0004.SQLITE[:3]]


def _install(k: str):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        function, triggers = _judgment_count_sql(k)
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(function, params=None)
            return
        for name in JUDGMENT_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)
        for sql in triggers:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0004_wants_judgments"),
    ]

    operations = [
        migrations.RunPython(_install(SAFE_K), _install(_0004._K)),
    ]
