"""Measurement: every curated item's rule values, gate counts and signature sketch, as numbers
the console's threshold preview can query. Items curated before this migration are measured
here from their stored text and signature (about a millisecond each), the same way the
pipeline measures new ones."""

import django.db.models.deletion
from django.db import migrations, models

BATCH = 1000


def measure_curated(apps, schema_editor):  # type: ignore[no-untyped-def]
    # Plain functions with no Django in them, so what this computes is what the pipeline stores.
    from curation import dedup, rules
    from curation.text import exact_key

    decisions = apps.get_model("curation", "CurationDecision").objects
    measurement = apps.get_model("curation", "Measurement")
    curated = (
        decisions.exclude(processed_at=None)
        .exclude(signature=None)
        .select_related("prompt", "response")
        .order_by("id")
    )
    batch = []
    for decision in curated.iterator(chunk_size=BATCH):
        item = decision.prompt if decision.kind == "prompt" else decision.response
        measures = rules.measure(item.text)
        batch.append(
            measurement(
                decision_id=decision.pk,
                project_id=decision.project_id,
                kind=decision.kind,
                **measures.compared(),
                prose_words=measures.prose_words,
                lines=measures.lines,
                paragraphs=measures.paragraphs,
                exact_key=exact_key(decision.exact_hash),
                minhash_sketch=dedup.sketch(dedup.Signature.from_bytes(bytes(decision.signature)).hashvalues),
            )
        )
        if len(batch) >= BATCH:
            measurement.objects.bulk_create(batch)
            batch = []
    measurement.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0002_snapshot_immutable"),
        ("feedback", "0003_judgment_count"),
    ]

    operations = [
        migrations.CreateModel(
            name="Measurement",
            fields=[
                (
                    "decision",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="measurement",
                        serialize=False,
                        to="curation.curationdecision",
                    ),
                ),
                (
                    "kind",
                    models.CharField(choices=[("prompt", "Prompt"), ("response", "Response")], max_length=16),
                ),
                ("word_count", models.FloatField()),
                ("mean_word_length", models.FloatField()),
                ("symbol_ratio", models.FloatField()),
                ("alpha_words", models.FloatField()),
                ("stop_words", models.FloatField()),
                ("dup_line_fraction", models.FloatField()),
                ("dup_paragraph_fraction", models.FloatField()),
                ("top_2gram_coverage", models.FloatField()),
                ("top_3gram_coverage", models.FloatField()),
                ("top_4gram_coverage", models.FloatField()),
                ("bullet_line_ratio", models.FloatField()),
                ("ellipsis_line_ratio", models.FloatField()),
                ("longest_word", models.FloatField()),
                ("keyboard_mash", models.FloatField()),
                ("prose_words", models.PositiveIntegerField()),
                ("lines", models.PositiveIntegerField()),
                ("paragraphs", models.PositiveIntegerField()),
                ("exact_key", models.BigIntegerField(blank=True, null=True)),
                ("minhash_sketch", models.BinaryField()),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="feedback.project"
                    ),
                ),
            ],
        ),
        migrations.RunPython(measure_curated, migrations.RunPython.noop),
    ]
