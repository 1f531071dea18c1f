import json

import pytest

from curation.rules import (
    PROMPT_THRESHOLDS,
    RESPONSE_THRESHOLDS,
    evaluate,
    failed_rules,
    results_to_json,
    thresholds_for,
)

GOOD_PROMPTS = [
    "Explain quantum entanglement",
    "What is the capital of France?",
    "Is it better to use tabs or spaces? Tabs or spaces?",
    "I'm writing a Django app and my migrations keep failing with 'relation does not exist' "
    "when I run the tests. The model has a foreign key to a table in another app. "
    "How do I fix the dependency order?",
    "Why does this loop never end?\n```python\nwhile True:\n    pass\n    pass\n    pass\n```",
    "请解释一下量子纠缠",
    # Numbers and maths are not words without letters (Gopher's rule would fail all of these).
    "What is 17 * 23?",
    "Solve for x: 2x + 3 = 11",
    "Compute 3 + 4 * 2 - 1 = ?",
    "Integrate x^2 + 3x + 2 dx from 0 to 1.",
    "Find the determinant of [[1, 2], [3, 4]].",
    "Simplify \\frac{x^2 - 1}{x - 1} for x != 1.",
]

GOOD_RESPONSES = [
    "Paris.",
    "- Apples\n- Bananas\n- Cherries",
    "Quantum entanglement is a phenomenon in which two or more particles share a single "
    "quantum state, so that measuring one of them tells you something about the other, no "
    "matter how far apart they are.\n\n## Key points\n\n1. The correlation is stronger than any "
    "classical explanation allows.\n2. It cannot be used to send information faster than light.\n"
    "3. It is a resource for quantum computing and cryptography.",
    "Use a context manager so the file is closed even if an exception is raised:\n\n"
    "```python\nwith open(path) as handle:\n    data = handle.read()\n```\n\n"
    "See https://docs.python.org/3/reference/compound_stmts.html#the-with-statement for details.",
    "391",
    "17 * 23 = 391",
    "2x + 3 = 11\n2x = 8\nx = 4",
    "det = 1*4 - 2*3 = -2",
    "We have 3 + 4 * 2 - 1 = 3 + 8 - 1 = 10, so the answer is 10.",
    "Step 1: 12 + 30 = 42\nStep 2: 42 / 6 = 7\nStep 3: 7 * 3 = 21\nSo the total is 21 apples.",
]


@pytest.mark.parametrize("text", GOOD_PROMPTS)
def test_it_passes_realistic_prompts(text):
    assert failed_rules(evaluate(text, kind="prompt")) == []


@pytest.mark.parametrize("text", GOOD_RESPONSES)
def test_it_passes_good_answers(text):
    assert failed_rules(evaluate(text, kind="response")) == []


LOREM_BULLETS = (
    "- Lorem ipsum dolor sit amet\n- consectetur adipiscing elit\n- sed do eiusmod tempor\n"
    "- incididunt ut labore et dolore\n- magna aliqua ut enim ad minim\n- veniam quis nostrud exercitation"
)


@pytest.mark.parametrize(
    ("text", "kind", "rule"),
    [
        ("asdf asdf asdf", "prompt", "keyboard_mash"),
        ("hello hello hello hello", "prompt", "top_2gram_coverage"),
        ("!!!!!!", "response", "alpha_words"),
        ("!!! ??? ### ~~~ @@@", "prompt", "alpha_words"),
        ("*** *** *** *** ===", "prompt", "alpha_words"),
        ("Click >>> here <<< now !!! $$$ $$$ $$$ *** ***", "prompt", "alpha_words"),
        ("sdkjfh qwertyuiop asdfghjkl", "prompt", "keyboard_mash"),
        ("Buy now!\nBuy now!\nBuy now!\nBuy now!\nBest price", "response", "dup_line_fraction"),
        ("a" * 80, "response", "longest_word"),
        (LOREM_BULLETS, "prompt", "stop_words"),
        (LOREM_BULLETS, "prompt", "bullet_line_ratio"),
        (LOREM_BULLETS, "response", "stop_words"),
        ("#ai #ml #tech #love #instagood #follow #fun", "prompt", "symbol_ratio"),
        ("Hi", "prompt", "word_count"),
        ("Intro\n\nSame paragraph here.\n\nSame paragraph here.", "response", "dup_paragraph_fraction"),
        ("Wait...\nThen...\nAnd then...\nFinally.", "response", "ellipsis_line_ratio"),
    ],
)
def test_it_fails_junk_on_the_right_rule(text, kind, rule):
    assert rule in failed_rules(evaluate(text, kind=kind))


def test_it_measures_every_rule_on_every_item():
    results = evaluate("Explain quantum entanglement")
    names = [result.name for result in results]
    assert names == [result.name for result in evaluate("x " * 500, kind="response")]
    assert "stop_words" in names
    assert "top_4gram_coverage" in names
    by_name = {result.name: result for result in results}
    assert by_name["word_count"].value == 3
    assert by_name["stop_words"].passed
    assert by_name["stop_words"].message.startswith("not applied")


def test_it_computes_gopher_style_values():
    text = "the cat sat on the mat and the cat sat on the mat again today with friends " * 2
    by_name = {result.name: result for result in evaluate(text, kind="response")}
    assert by_name["word_count"].value == 34
    assert by_name["top_2gram_coverage"].value > 0.2
    assert not by_name["top_2gram_coverage"].passed
    assert by_name["mean_word_length"].value == pytest.approx(
        sum(len(w) for w in text.split()) / 34, abs=1e-3
    )


def test_it_tunes_length_separately_for_prompts_and_responses():
    assert "word_count" in failed_rules(evaluate("Paris.", kind="prompt"))
    assert "word_count" not in failed_rules(evaluate("Paris.", kind="response"))
    assert PROMPT_THRESHOLDS.min_words > RESPONSE_THRESHOLDS.min_words


def test_it_applies_project_overrides():
    text = "word " * 30
    assert "word_count" not in failed_rules(evaluate(text, kind="response"))
    assert "word_count" in failed_rules(evaluate(text, {"max_words": 20}, kind="response"))
    relaxed = thresholds_for("response", {"max_top_2gram_coverage": None})
    result = {r.name: r for r in evaluate("hello hello hello hello", relaxed, kind="response")}
    assert result["top_2gram_coverage"].passed
    assert result["top_2gram_coverage"].value > 0.2
    with pytest.raises(ValueError, match="unknown rule thresholds: max_wordz"):
        thresholds_for("prompt", {"max_wordz": 3})
    with pytest.raises(ValueError):
        thresholds_for("system", None)  # type: ignore[arg-type]


def test_it_returns_json_serialisable_results():
    payload = results_to_json(evaluate("asdf asdf asdf"))
    decoded = json.loads(json.dumps(payload))
    mash = next(item for item in decoded if item["name"] == "keyboard_mash")
    assert mash == {
        "name": "keyboard_mash",
        "value": 1.0,
        "threshold": 0.5,
        "passed": False,
        "message": "mashed words 1 > 0.5",
    }
