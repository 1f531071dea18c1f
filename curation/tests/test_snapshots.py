from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction

from curation import services, snapshots
from curation.models import CurationDecision, Snapshot, SnapshotItem, Status
from curation.tests.factories import add_demo, add_prompt, paragraph, variant
from feedback.models import Judgment
from feedback.tests.factories import make_response, make_task, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"


def curate(project) -> None:  # type: ignore[no-untyped-def]
    services.project_curate(project_id=project.pk)


def judge(task, annotator, choice, strength="clear"):  # type: ignore[no-untyped-def]
    return Judgment.objects.create(task=task, annotator=annotator, choice=choice, strength=strength)


def test_it_exports_demonstrations_as_trl_conversations(project, carol):
    prompt = add_prompt(project, "Give me one tip for writing clearer emails to busy colleagues.")
    add_demo(prompt, "Put the request in the first sentence, then the context they need to act on it.")
    curate(project)
    snapshot = snapshots.snapshot_create(project=project, actor=carol)
    rows = [
        json.loads(line)
        for name in ("sft_train.jsonl", "sft_validation.jsonl")
        for line in (Path(snapshot.directory) / name).read_text().splitlines()
    ]
    assert len(rows) == 1
    assert [m["role"] for m in rows[0]["messages"]] == ["user", "assistant"]
    assert rows[0]["messages"][1]["content"].startswith("Put the request")


def test_it_exports_trust_weighted_preferences_and_drops_ties(project, alice, bob, carol):
    careful = make_user("erin", trust=0.95)
    alice.trust, bob.trust = 0.3, 0.3
    alice.save()
    bob.save()
    prompt = add_prompt(project, "What should I pack for a two day hike in the Scottish highlands?")
    good = make_response(
        prompt, "Layers, a waterproof jacket, a map and compass, food, water and a head torch."
    )
    bad = make_response(prompt, "Just bring your phone, you will be fine without anything else at all.")
    decided = make_task(project, prompt=prompt, response_a=good, response_b=bad)
    judge(decided, careful, "a")
    judge(decided, alice, "b", "slight")
    judge(decided, bob, "b", "slight")
    tied = make_task(project, prompt=prompt, response_a=bad, response_b=good)
    judge(tied, careful, "tie")
    curate(project)
    snapshot = snapshots.snapshot_create(project=project, actor=carol)
    rows = [
        json.loads(line)
        for name in ("preferences_train.jsonl", "preferences_validation.jsonl")
        for line in (Path(snapshot.directory) / name).read_text().splitlines()
    ]
    assert len(rows) == 1
    assert rows[0]["chosen"].startswith("Layers") and rows[0]["rejected"].startswith("Just bring")
    assert rows[0]["margin"] == 1.0
    item = SnapshotItem.objects.get(snapshot=snapshot, task=decided)
    assert set(item.judgments.values_list("annotator__username", flat=True)) == {"erin", "alice", "bob"}


def test_it_carries_a_pairs_training_weight_only_where_it_is_not_one(project, carol):
    prompt = add_prompt(project, "What should I pack for a two day hike in the Scottish highlands?")
    good = make_response(
        prompt, "Layers, a waterproof jacket, a map and compass, food, water and a head torch."
    )
    bad = make_response(prompt, "Just bring your phone, you will be fine without anything else at all.")
    other = make_response(prompt, "A tent, a stove, two days of food, a warm hat and spare socks.")
    weighted = make_task(project, prompt=prompt, response_a=good, response_b=bad)
    weighted.training_weight = 2.5
    weighted.save()
    plain = make_task(project, prompt=prompt, response_a=other, response_b=bad)
    judge(weighted, carol, "a")
    judge(plain, carol, "a")
    curate(project)
    snapshot = snapshots.snapshot_create(project=project, actor=carol)
    rows = {
        row["id"]: row
        for name in ("preferences_train.jsonl", "preferences_validation.jsonl")
        for row in map(json.loads, (Path(snapshot.directory) / name).read_text().splitlines())
    }
    assert rows[f"task-{weighted.pk}"]["weight"] == 2.5
    assert "weight" not in rows[f"task-{plain.pk}"]


def test_it_holds_gold_pairs_apart_for_the_gate_and_never_trains_on_them(project, carol):
    cfg = services.curation_settings(project=project)
    cfg.validation_percent = 0  # every prompt with kept data lands in the training split
    cfg.save()
    taught = add_prompt(project, "What should I pack for a two day hike in the Scottish highlands?")
    good = make_response(taught, "Layers, a waterproof jacket, a map and compass, food and a head torch.")
    bad = make_response(taught, "Just bring your phone, you will be fine without anything else at all.")
    judge(make_task(project, prompt=taught, response_a=good, response_b=bad), carol, "a")
    # A gold pair on a prompt the model trains on, or on a near duplicate of one, says little
    # about unseen prompts: left out.
    make_task(project, prompt=taught, response_a=bad, response_b=good, is_gold=True, gold_answer="b")
    add_demo(add_prompt(project, paragraph(7)), "A careful, complete answer about the topic, step by step.")
    twin = add_prompt(project, variant(paragraph(7), 8))
    make_task(
        project,
        prompt=twin,
        response_a=make_response(twin, "A careful answer that walks through the topic with one example."),
        response_b=make_response(twin, "No idea, sorry, look it up somewhere else on the internet."),
        is_gold=True,
        gold_answer="a",
    )
    unseen = add_prompt(project, "Name one thing to check before you sign a flat rental contract.")
    right = make_response(unseen, "Who pays for repairs, and how much notice either side must give to leave.")
    wrong = make_response(unseen, "Nothing, contracts are all the same and nobody ever reads them anyway.")
    gold = make_task(
        project, prompt=unseen, response_a=right, response_b=wrong, is_gold=True, gold_answer="a"
    )
    judge(gold, carol, "b")  # a gold judgment tests the annotator; it is not a preference
    curate(project)
    snapshot = snapshots.snapshot_create(project=project, actor=carol)
    directory = Path(snapshot.directory)
    rows = [json.loads(line) for line in (directory / "preferences_gold.jsonl").read_text().splitlines()]
    assert [(r["id"], r["chosen"][:3], r["rejected"][:3], r["gold"]) for r in rows] == [
        (f"task-{gold.pk}", "Who", "Not", True)
    ]
    trained = [
        json.loads(line)["id"]
        for name in ("preferences_train.jsonl", "preferences_validation.jsonl")
        for line in (directory / name).read_text().splitlines()
    ]
    assert f"task-{gold.pk}" not in trained and len(trained) == 1
    assert snapshot.manifest["gold_tasks"] == [gold.pk] and snapshot.counts["preferences_gold"] == 1
    assert gold.pk not in snapshot.manifest["tasks"]
    assert snapshots.snapshot_verify(snapshot=snapshot) == []


def test_it_redacts_pii_in_exports(project, carol):
    prompt = add_prompt(project, "Draft a short reply to a customer asking for a refund of their order.")
    add_demo(prompt, "Hi, we have refunded your order. Questions? Write to help.desk@example.com any time.")
    curate(project)
    snapshot = snapshots.snapshot_create(project=project, actor=carol)
    text = "".join((Path(snapshot.directory) / n).read_text() for n in snapshots.EXPORT_FILES)
    assert "help.desk@example.com" not in text and "[EMAIL]" in text


def test_it_puts_a_whole_near_duplicate_cluster_in_one_split(project, carol):
    cfg = services.curation_settings(project=project)
    cfg.validation_percent = 50
    cfg.save()
    clusters = []
    for seed in range(12):
        base = paragraph(seed * 10)
        members = [add_prompt(project, base), add_prompt(project, variant(base, seed * 10 + 1))]
        for member in members:
            add_demo(member, f"A careful, complete answer number {member.pk} about the topic.")
        clusters.append(members)
    curate(project)
    # Curators keep the near duplicates (and their demonstrations) too; the split must
    # still not leak across a cluster.
    rejected = CurationDecision.objects.filter(project=project).exclude(status=Status.KEPT)
    assert rejected.filter(kind="prompt").count() == len(clusters)
    for decision in rejected:
        services.decision_override(decision_id=decision.pk, actor=carol, status=Status.KEPT)
    snapshot = snapshots.snapshot_create(project=project, actor=carol)
    splits = snapshots.snapshot_split_of_prompts(snapshot=snapshot)
    used = set()
    for members in clusters:
        cluster_splits = set().union(*(splits[m.pk] for m in members))
        assert len(cluster_splits) == 1, f"cluster {[m.pk for m in members]} leaked across {cluster_splits}"
        used |= cluster_splits
    assert used == {"train", "validation"}


def test_it_names_the_prompts_the_next_snapshot_holds_out_before_it_is_taken(project, carol):
    # Pair selection draws these prompts' pairs at random, so they must be the very prompts the
    # snapshot then puts in validation, near duplicates included.
    cfg = services.curation_settings(project=project)
    cfg.validation_percent = 50
    cfg.save()
    for seed in range(12):
        base = paragraph(seed * 10 + 700)
        for member in (add_prompt(project, base), add_prompt(project, variant(base, seed * 10 + 701))):
            add_demo(member, f"A careful, complete answer number {member.pk} about the topic.")
    curate(project)
    for decision in CurationDecision.objects.filter(project=project).exclude(status=Status.KEPT):
        services.decision_override(decision_id=decision.pk, actor=carol, status=Status.KEPT)
    held = snapshots.validation_prompt_ids(project=project)
    snapshot = snapshots.snapshot_create(project=project, actor=carol)
    splits = snapshots.snapshot_split_of_prompts(snapshot=snapshot)
    assert held == {pid for pid, split in splits.items() if split == {"validation"}}
    assert 0 < len(held) < len(splits)


def test_it_splits_the_same_prompt_the_same_way_in_every_snapshot(project, carol):
    for seed in range(6):
        add_demo(add_prompt(project, paragraph(seed + 500)), "A helpful and specific answer to the question.")
    curate(project)
    first = snapshots.snapshot_create(project=project, actor=carol)
    second = snapshots.snapshot_create(project=project, actor=carol)
    assert snapshots.snapshot_split_of_prompts(snapshot=first) == snapshots.snapshot_split_of_prompts(
        snapshot=second
    )
    assert (first.version, second.version) == (1, 2)
    assert first.content_hash != second.content_hash  # the version is part of the manifest


def test_it_refuses_to_change_a_snapshot(project, carol):
    add_demo(add_prompt(project, "How many legs does a spider have, and why?"), "Eight, like all arachnids.")
    curate(project)
    snapshot = snapshots.snapshot_create(project=project, actor=carol)
    snapshot.note = "edited"
    with pytest.raises(DatabaseError), transaction.atomic():
        snapshot.save()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE curation_snapshot SET content_hash = 'x' WHERE id = %s", [snapshot.pk])
    assert Snapshot.objects.get(pk=snapshot.pk).note == ""


def test_it_verifies_and_detects_tampering(project, carol):
    add_demo(add_prompt(project, "Name three primary colours used in painting."), "Red, yellow and blue.")
    curate(project)
    snapshot = snapshots.snapshot_create(project=project, actor=carol)
    assert snapshots.snapshot_verify(snapshot=snapshot) == []
    path = Path(snapshot.directory) / "sft_train.jsonl"
    if not path.read_text():
        path = Path(snapshot.directory) / "sft_validation.jsonl"
    os.chmod(path, 0o644)
    path.write_text(path.read_text().replace("blue", "green"))
    assert snapshots.snapshot_verify(snapshot=snapshot) == [
        f"{path.name} changed since the snapshot was taken"
    ]


def test_it_waits_for_pending_curation(project, carol):
    add_prompt(project, "Is it safe to eat raw cookie dough?")
    services.decisions_ensure(project_id=project.pk)
    from flywheel.errors import Conflict

    with pytest.raises(Conflict):
        snapshots.snapshot_create(project=project, actor=carol)


def test_it_uses_preferred_human_responses_as_labelled_demonstrations(project, alice, bob, carol):
    from feedback.models import ResponseSource

    human = add_prompt(project, "How long should I rest bread dough before shaping it?")
    good = make_response(human, "About an hour, until it has roughly doubled in size.")
    weak = make_response(human, "Some time.")
    machine = add_prompt(project, "How do I descale a kettle with household items?")
    model_good = make_response(
        machine, "Boil equal parts water and white vinegar, rest, rinse twice.", source=ResponseSource.MODEL
    )
    model_weak = make_response(machine, "Buy a new kettle.", source=ResponseSource.MODEL)
    for prompt_task in (
        make_task(project, prompt=human, response_a=good, response_b=weak),
        make_task(project, prompt=machine, response_a=model_good, response_b=model_weak),
    ):
        judge(prompt_task, alice, "a")
        judge(prompt_task, bob, "a")
    curate(project)
    snapshot = snapshots.snapshot_create(project=project, actor=carol)
    rows = [
        json.loads(line)
        for name in ("sft_train.jsonl", "sft_validation.jsonl")
        for line in (Path(snapshot.directory) / name).read_text().splitlines()
    ]
    assert [(r["origin"], r["messages"][1]["content"]) for r in rows] == [("human-preferred", good.text)]
