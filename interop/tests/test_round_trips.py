"""Export, import into a fresh project, export again: the same bytes, for every format."""

from __future__ import annotations

import json

import pytest

from feedback.models import Judgment, Project, ResponseSource, Strength
from feedback.tests.factories import make_project, make_prompt, make_response, make_task, make_user
from flywheel.models import Role
from interop.selectors import export_lines
from interop.services import interop_import
from interop.tests.test_formats import ARENA, oasst_tree
from interop.tests.test_imports import HH


def native_project() -> Project:
    """Human judgments on model responses, with a multi-turn prompt, a tie, a demonstration,
    a gold task (never exported) and an excluded annotator (never counted)."""
    project = make_project(name="Native")
    alice, bob = make_user("alice", Role.ANNOTATOR), make_user("bob", Role.ANNOTATOR, trust=0.6)
    mallory = make_user("mallory", Role.ANNOTATOR, judgments_excluded=True)
    simple = make_prompt(project, "Name a prime number.")
    deep = make_prompt(
        project, "Human: Hi!\n\nAssistant: Hello, how can I help?\n\nHuman: Explain DNS in one line."
    )
    tasks = []
    for prompt, texts in (
        (simple, ["7.", "Nine.", "Two is the only even prime."]),
        (deep, ["DNS maps names to addresses.", "It is a phone book.\n\nHuman: Really?\n\nAssistant: Yes."]),
    ):
        responses = [
            make_response(prompt, text, source=ResponseSource.MODEL, model_name=f"policy-v{i + 1}")
            for i, text in enumerate(texts)
        ]
        for i in range(len(responses)):
            for j in range(i + 1, len(responses)):
                tasks.append(
                    make_task(project, prompt=prompt, response_a=responses[i], response_b=responses[j])
                )
    votes = [("a", "a"), ("b", "tie"), ("b", "b"), ("a", "b")]
    for task, (alice_choice, bob_choice) in zip(tasks, votes, strict=True):
        Judgment.objects.create(task=task, annotator=alice, choice=alice_choice, strength=Strength.CLEAR)
        Judgment.objects.create(task=task, annotator=bob, choice=bob_choice)
        Judgment.objects.create(task=task, annotator=mallory, choice="a" if alice_choice == "b" else "b")
    gold = make_task(project, is_gold=True, gold_answer="a")
    Judgment.objects.create(task=gold, annotator=alice, choice="a")
    make_response(simple, "11 is prime, and so is 13.", source=ResponseSource.DEMONSTRATION, author=alice)
    return project


CASES = [
    ("trl-preference", "standard"),
    ("trl-preference", "conversational"),
    ("trl-sft", "messages"),
    ("trl-sft", "prompt-completion"),
    ("hh", None),
    ("oasst", None),
    ("arena", None),
]


def export(project: Project, fmt: str, style: str | None) -> str:
    return "".join(export_lines(project=project, format=fmt, style=style))


@pytest.mark.parametrize(("fmt", "style"), CASES, ids=[f"{f}-{s}" for f, s in CASES])
def test_it_round_trips_native_data_byte_for_byte(db, fmt: str, style: str | None):
    first = export(native_project(), fmt, style)
    assert first, "nothing exported"
    fresh = make_project(name="Fresh")
    report = interop_import(project=fresh, format=fmt, lines=first.splitlines(keepends=True), actor=None)
    assert report.error_count == 0, report.errors
    assert export(fresh, fmt, style) == first
    # And importing the export again changes nothing.
    again = interop_import(project=fresh, format=fmt, lines=first.splitlines(keepends=True), actor=None)
    assert not again.created and not again.updated


SOURCES = {
    "hh": [json.dumps(row) for row in HH],
    "arena": [json.dumps(ARENA), json.dumps(ARENA | {"judge": "arena_user_1", "winner": "tie"})],
    "oasst": [json.dumps(oasst_tree())],
    "trl-preference": [
        json.dumps({"prompt": "Sky colour?", "chosen": "Blue.", "rejected": "Green."}),
        json.dumps(
            {
                "prompt": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hey"},
                    {"role": "user", "content": "Bye"},
                ],
                "chosen": [{"role": "assistant", "content": "Goodbye!"}],
                "rejected": [{"role": "assistant", "content": "Whatever."}],
            }
        ),
    ],
}


@pytest.mark.parametrize("fmt", list(SOURCES))
def test_it_round_trips_data_that_came_from_the_format(db, fmt: str):
    source = make_project(name="From source")
    assert interop_import(project=source, format=fmt, lines=SOURCES[fmt], actor=None).error_count == 0
    first = export(source, fmt, None)
    fresh = make_project(name="Fresh")
    assert interop_import(project=fresh, format=fmt, lines=first.splitlines(), actor=None).error_count == 0
    assert export(fresh, fmt, None) == first


def test_it_exports_only_what_counts(db):
    project = native_project()
    prefs = [json.loads(line) for line in export_lines(project=project, format="trl-preference")]
    # Four tasks: alice a / bob a -> a; alice b / bob tie -> b; alice b / bob b -> b; and alice a
    # (trust 1.0) against bob b (0.6) -> a. mallory's contrary votes are excluded, and the gold
    # task is not there.
    assert [(p["chosen"], p["rejected"]) for p in prefs] == [
        ("7.", "Nine."),
        ("Two is the only even prime.", "7."),
        ("Two is the only even prime.", "Nine."),
        ("DNS maps names to addresses.", "It is a phone book.\n\nHuman: Really?\n\nAssistant: Yes."),
    ]
    battles = [json.loads(line) for line in export_lines(project=project, format="arena")]
    assert len(battles) == 8 and {b["judge"] for b in battles} == {"alice", "bob"}
    assert battles[0]["model_a"] == "policy-v1" and battles[0]["turn"] == 1
    deep = battles[-1]
    assert [m["role"] for m in deep["conversation_b"]] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert deep["turn"] == 3
    [tree_simple, tree_deep] = [json.loads(line) for line in export_lines(project=project, format="oasst")]
    ranks = {r["text"]: r["rank"] for r in tree_simple["prompt"]["replies"]}
    # Trust-weighted wins: "Two..." 1.0 + 0.3 + 1.0 + 0.6 = 2.9, "7." 1.0 + 0.6 + 0.3 = 1.9, "Nine." 0.
    assert ranks == {"Two is the only even prime.": 0, "7.": 1, "Nine.": 2}
    assert tree_deep["prompt"]["text"] == "Hi!"
