"""console.whatif without a database: stored measurements re-judged under new limits must
agree with rules.evaluate, and the duplicate replay must follow the pipeline's rules."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from console import whatif
from curation import dedup, rules
from curation.tests.factories import paragraph, variant

TEXTS = [
    "Explain recursion",
    "hi",
    "asdfgh qwerty zxcvbn hjkl",
    "Write a haiku about the sea.",
    paragraph(1),
    paragraph(2, 120),
    "- one\n- two\n- three\n- four",
    "Wait...\nWhat...\nReally...\nOk",
    "Use https://example.com/a/very/long/path/that/is/not/a/word/at/all/really/truly/absolutely ok",
    "The the the the the the the the the the the the the the the the the the the",
    "```python\nprint('x' * 100)\n```\nThat prints a long line of x characters for the demo.",
    "Résumé: café, naïve, façade. " * 6,
    "# Title\n\nSome text here.\n\nSome text here.\n\nSome text here.",
    "A" * 90 + " is a long token in prose",
    "#hashtag #another #more #tags are symbols here and there #x",
]


def _random_limits(rng: random.Random, kind: str) -> rules.RuleThresholds:
    base = rules.thresholds_for(kind)  # type: ignore[arg-type]
    changes = {}
    for f in dataclasses.fields(base):
        if rng.random() < 0.3:
            continue
        value = getattr(base, f.name)
        if value is None:
            changes[f.name] = rng.choice([None, 0.05, 0.5])
        elif isinstance(value, int):
            changes[f.name] = max(0, value + rng.randint(-3, 3))
        else:
            changes[f.name] = rng.choice([None, round(value * rng.uniform(0.3, 1.7), 3)])
        if f.name in (
            "min_words",
            "mean_word_length_min_words",
            "stop_words_min_words",
            "line_rules_min_lines",
        ):
            changes[f.name] = changes[f.name] if changes[f.name] is not None else value
        if f.name in ("min_mean_word_length", "max_mean_word_length") and changes[f.name] is None:
            changes[f.name] = value
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("seed", range(40))
def test_it_judges_stored_measurements_exactly_as_evaluate_would(seed):
    rng = random.Random(seed)
    kind = rng.choice(["prompt", "response"])
    measured_with = _random_limits(rng, kind)
    proposed = _random_limits(rng, kind)
    for text in TEXTS:
        stored = rules.results_to_json(rules.evaluate(text, measured_with, kind=kind))  # type: ignore[arg-type]
        expected = frozenset(rules.failed_rules(rules.evaluate(text, proposed, kind=kind)))  # type: ignore[arg-type]
        failing, reevaluated = whatif.failing_rules(
            frozenset(str(r["name"]) for r in stored if not r["passed"]),
            {str(r["name"]): r for r in stored},
            proposed,
            measured_with,
            lambda text=text: rules.evaluate(text, proposed, kind=kind),  # type: ignore[misc]
        )
        assert failing == expected, (text, whatif.changed_fields(measured_with, proposed))
        gates = {"mean_word_length_min_words", "stop_words_min_words", "line_rules_min_lines"}
        if not gates & set(whatif.changed_fields(measured_with, proposed)):
            # Only "rule off" stop words (whose gate was never checked) may force a re-measure.
            assert not reevaluated or measured_with.min_stop_words is None


def test_it_knows_where_each_rule_sits_in_a_stored_measurement():
    stored = rules.evaluate(paragraph(4), None, kind="response")
    assert {result.name: i for i, result in enumerate(stored)} == whatif.RULE_POSITIONS
    assert set(whatif.RULE_POSITIONS) == set(whatif.RULE_LIMITS)


def test_it_asks_for_a_re_measure_when_measured_under_other_limits():
    stored = rules.results_to_json(rules.evaluate(paragraph(3), None, kind="prompt"))
    old = rules.thresholds_for("prompt", {"max_words": 10})
    outcome = whatif.rule_outcome(stored[0], rules.thresholds_for("prompt"), old)
    assert outcome is None


def _item(pk: int, text: str, quality: float | None = None) -> tuple[whatif.DedupItem, np.ndarray]:
    from curation.text import exact_hash

    signature = dedup.signature_for_text(text)
    return (
        whatif.DedupItem(
            id=pk,
            kind="prompt",
            exact_hash=exact_hash(text),
            hashvalues=signature.hashvalues,
            quality=quality,
        ),
        dedup.shingle_fingerprints(text),
    )


def _replay(texts: dict[int, str], threshold: float, policy: str = "earliest", quality=None):  # type: ignore[no-untyped-def]
    pairs = {pk: _item(pk, text, (quality or {}).get(pk)) for pk, text in texts.items()}
    return whatif.simulate_dedup(
        [item for item, _ in pairs.values()],
        threshold=threshold,
        policy=policy,
        shingles_of=lambda ids: {pk: pairs[pk][1] for pk in ids},
    )


def test_it_replays_clusters_in_id_order():
    base = paragraph(1)
    texts = {1: base, 2: variant(base, 2), 3: paragraph(9), 4: base.upper(), 5: variant(base, 3, edits=8)}
    found = _replay(texts, 0.8)
    assert found[1] == whatif.DupOutcome(1, "")
    assert found[2] == whatif.DupOutcome(1, "near_duplicate")
    assert found[3] == whatif.DupOutcome(3, "")
    assert found[4] == whatif.DupOutcome(1, "exact_duplicate")
    assert found[5] == whatif.DupOutcome(5, "")
    looser = _replay(texts, 0.3)
    assert looser[5] == whatif.DupOutcome(1, "near_duplicate")


def test_it_lets_the_best_quality_item_take_a_cluster_over():
    base = paragraph(1)
    found = _replay({1: base, 2: variant(base, 2)}, 0.8, policy="quality", quality={1: 0.2, 2: 0.9})
    assert found[2] == whatif.DupOutcome(2, "")
    assert found[1] == whatif.DupOutcome(2, "near_duplicate")
