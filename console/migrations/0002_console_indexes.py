"""Indexes for the console's list pages, on tables other apps own.

They live here, with the queries that need them (console/selectors.py), and are plain SQL:
the models that own these tables do not declare them, so Django's autodetector never sees
them and never drops them. bench/console.py measures the pages with and without them.

- console_decision_queue: the review queue is "this project, this status, in id order",
  read a page at a time; with (project, status, id) PostgreSQL walks the index in order
  and stops after one page.
- console_decision_cluster: duplicate clusters group the duplicates of a project by their
  representative.
- console_decision_reasons (PostgreSQL): GIN over the reasons JSON, for the reason filter
  (jsonb containment).
- console_prompt_fts / console_response_fts (PostgreSQL): GIN over the English tsvector of
  the text, the exact expression django.contrib.postgres's SearchVector("text",
  config="english") produces, so full-text search uses them.
"""

from django.db import migrations

BOTH = [
    (
        "console_decision_queue",
        "CREATE INDEX IF NOT EXISTS console_decision_queue ON curation_curationdecision (project_id, status, id)",
    ),
    (
        "console_decision_cluster",
        "CREATE INDEX IF NOT EXISTS console_decision_cluster "
        "ON curation_curationdecision (project_id, cluster_representative_id)",
    ),
]
POSTGRES = [
    (
        "console_decision_reasons",
        "CREATE INDEX IF NOT EXISTS console_decision_reasons "
        "ON curation_curationdecision USING gin (reasons jsonb_path_ops)",
    ),
    (
        "console_prompt_fts",
        "CREATE INDEX IF NOT EXISTS console_prompt_fts "
        "ON feedback_prompt USING gin (to_tsvector('english'::regconfig, COALESCE(text, '')))",
    ),
    (
        "console_response_fts",
        "CREATE INDEX IF NOT EXISTS console_response_fts "
        "ON feedback_response USING gin (to_tsvector('english'::regconfig, COALESCE(text, '')))",
    ),
]


def _indexes(vendor):
    return BOTH + (POSTGRES if vendor == "postgresql" else [])


def create(apps, schema_editor):
    for _name, sql in _indexes(schema_editor.connection.vendor):
        schema_editor.execute(sql)


def drop(apps, schema_editor):
    for name, _sql in _indexes(schema_editor.connection.vendor):
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_initial"),
        ("curation", "0002_snapshot_immutable"),
        ("feedback", "0002_initial"),
    ]

    operations = [migrations.RunPython(create, drop)]
