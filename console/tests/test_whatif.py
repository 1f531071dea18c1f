"""console.whatif without a database: stored measurements judged under new limits must agree
with rules.evaluate, and the duplicate replay must follow the pipeline's rules."""

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
    limits = _random_limits(rng, kind)
    for text in TEXTS:
        measures = rules.measure(text)
        stored = {**measures.compared(), "prose_words": measures.prose_words, "lines": measures.lines}
        stored["paragraphs"] = measures.paragraphs
        expected = set(rules.failed_rules(rules.evaluate(text, limits, kind=kind)))  # type: ignore[arg-type]
        found = {name for name in whatif.RULES if (f := whatif.failure(name, limits)) and f.holds(stored)}
        assert found == expected, (text, limits)


def test_it_knows_every_rule_and_stores_a_column_for_each():
    from curation.models import Measurement

    assert list(whatif.RULES) == [r.name for r in rules.evaluate("order of the rules")]
    columns = {f.name for f in Measurement._meta.get_fields()}
    assert set(whatif.RULES) | {"prose_words", "lines", "paragraphs"} <= columns
    assert set(rules.measure("x").compared()) == set(whatif.RULES)


def test_it_names_only_the_rules_a_change_can_affect():
    current = rules.thresholds_for("prompt")
    gate = rules.thresholds_for("prompt", {"line_rules_min_lines": 5})
    assert whatif.affected_rules(gate, current) == [
        "dup_line_fraction",
        "bullet_line_ratio",
        "ellipsis_line_ratio",
    ]
    assert whatif.affected_rules(current, current) == []
    # A rule that is off stays off, whatever its gate says.
    off = rules.thresholds_for("prompt", {"min_stop_words": None})
    assert (
        whatif.affected_rules(
            rules.thresholds_for("prompt", {"min_stop_words": None, "stop_words_min_words": 3}), off
        )
        == []
    )


def _replay(texts: dict[int, str], threshold: float, policy: str = "earliest", quality=None):  # type: ignore[no-untyped-def]
    from curation.text import exact_hash, exact_key

    ids = sorted(texts)
    signatures = {pk: dedup.signature_for_text(texts[pk]) for pk in ids}
    stored = {
        pk: whatif.Stored(
            exact_hash=exact_hash(texts[pk]),
            hashvalues=signatures[pk].hashvalues,
            shingles=dedup.shingle_fingerprints(texts[pk]),
            quality=(quality or {}).get(pk),
        )
        for pk in ids
    }
    loaded: list[int] = []

    def load(wanted: list[int], full: bool) -> dict[int, whatif.Stored]:
        if full:
            loaded.extend(wanted)
        return {pk: stored[pk] for pk in wanted}

    found = whatif.replay_duplicates(
        np.array(ids, dtype=np.int64),
        np.array([exact_key(stored[pk].exact_hash) for pk in ids], dtype=np.int64),
        np.ones(len(ids), dtype=bool),
        dedup.unpack_sketches(b"".join(dedup.sketch(signatures[pk].hashvalues) for pk in ids)),
        threshold=threshold,
        policy=policy,
        load=load,
    )
    alone = {pk: whatif.DupOutcome(pk, "") for pk in ids if pk not in found}
    return {**alone, **found}, loaded


def test_it_replays_clusters_in_id_order():
    base = paragraph(1)
    texts = {1: base, 2: variant(base, 2), 3: paragraph(9), 4: base.upper(), 5: variant(base, 3, edits=8)}
    found, loaded = _replay(texts, 0.8)
    assert found[1] == whatif.DupOutcome(1, "")
    assert found[2] == whatif.DupOutcome(1, "near_duplicate")
    assert found[3] == whatif.DupOutcome(3, "")
    assert found[4] == whatif.DupOutcome(1, "exact_duplicate")
    assert found[5] == whatif.DupOutcome(5, "")
    assert 3 not in loaded, "a text with no candidate is never read in full"
    looser, _ = _replay(texts, 0.3)
    assert looser[5] == whatif.DupOutcome(1, "near_duplicate")


def test_it_merges_the_clusters_a_bridging_item_matches():
    base = paragraph(1)
    # 1 and 2 are near only 3, so 3 merges their clusters when it comes last.
    texts = {1: variant(base, 2), 2: variant(base, 3), 3: base}
    found, _ = _replay(texts, 0.8)
    assert found[1] == whatif.DupOutcome(1, "")
    assert found[2] == whatif.DupOutcome(1, "near_duplicate")
    assert found[3] == whatif.DupOutcome(1, "near_duplicate")


def test_it_lets_the_best_quality_item_take_a_cluster_over():
    base = paragraph(1)
    found, _ = _replay({1: base, 2: variant(base, 2)}, 0.8, policy="quality", quality={1: 0.2, 2: 0.9})
    assert found[2] == whatif.DupOutcome(2, "")
    assert found[1] == whatif.DupOutcome(2, "near_duplicate")


def test_it_pairs_every_two_rows_that_share_a_band():
    rng = np.random.default_rng(3)
    matrix = rng.integers(0, 3, size=(60, 8)).astype(np.uint16)  # few values: many shared bands
    bands = matrix.reshape(60, 4, 2)
    expected = {
        (i, j) for i in range(60) for j in range(i + 1, 60) if (bands[i] == bands[j]).all(axis=1).any()
    }
    assert expected
    assert {tuple(p) for p in whatif.band_pairs(matrix.T.copy(), 4, 2).tolist()} == expected


def test_it_keeps_only_the_pairs_whose_full_signatures_share_a_band():
    # Same shingles (Jaccard 1), the same sketch, but full signatures that share no band: the
    # pipeline's LSH never puts them side by side, so neither is a duplicate of the other.
    shingles = dedup.shingle_fingerprints(paragraph(5))
    first = np.arange(128, dtype=np.uint32)
    second = first + np.uint32(1 << 16)  # different values, same low 16 bits
    stored = {
        pk: whatif.Stored(exact_hash=str(pk), quality=None, hashvalues=values, shingles=shingles)
        for pk, values in ((1, first), (2, second))
    }
    found = whatif.replay_duplicates(
        np.array([1, 2], dtype=np.int64),
        np.array([1, 2], dtype=np.int64),
        np.ones(2, dtype=bool),
        dedup.unpack_sketches(dedup.sketch(first) + dedup.sketch(second)),
        threshold=0.8,
        policy="earliest",
        load=lambda ids, full: {pk: stored[pk] for pk in ids},
    )
    assert found == {}
    # With the first value the same the rows share a band, and the replay links them.
    stored[2] = dataclasses.replace(stored[2], hashvalues=np.concatenate((first[:7], second[7:])))
    found = whatif.replay_duplicates(
        np.array([1, 2], dtype=np.int64),
        np.array([1, 2], dtype=np.int64),
        np.ones(2, dtype=bool),
        dedup.unpack_sketches(dedup.sketch(first) + dedup.sketch(stored[2].hashvalues)),
        threshold=0.8,
        policy="earliest",
        load=lambda ids, full: {pk: stored[pk] for pk in ids},
    )
    assert found[2] == whatif.DupOutcome(1, "near_duplicate")
