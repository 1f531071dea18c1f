"""The format modules alone: no database."""

from __future__ import annotations

import json

from interop.formats import arena, hh, oasst, trl
from interop.formats.common import Battle, Demonstration, LineError, Preference
from interop.formats.conversation import parse_prompt, parse_response, render_prompt, render_response


def lines(*rows: object) -> list[str]:
    return [row if isinstance(row, str) else json.dumps(row) for row in rows]


def test_it_stores_a_single_user_turn_as_itself_and_longer_contexts_as_transcripts():
    assert render_prompt(parse_prompt("What is 2+2?")) == "What is 2+2?"
    transcript = "Human: Hi\n\nAssistant: Hello!\n\nHuman: What is 2+2?"
    turns = parse_prompt(transcript)
    assert [t.role for t in turns] == ["user", "assistant", "user"]
    assert render_prompt(turns) == transcript
    # One labelled turn alone is ordinary text, not a transcript.
    assert parse_prompt("Human: hi")[0].content == "Human: hi"
    answer = "4.\n\nHuman: Sure?\n\nAssistant: Yes."
    assert render_response(parse_response(answer)) == answer


def test_it_splits_the_shared_hh_prompt_and_keeps_multi_turn_context():
    row = {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Capital of France?\n\nAssistant: Paris.",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Capital of France?\n\nAssistant: Lyon.",
    }
    [(number, record)] = list(hh.parse_hh(lines(row)))
    assert number == 1
    assert record == Preference(
        prompt="Human: Hi\n\nAssistant: Hello!\n\nHuman: Capital of France?",
        chosen="Paris.",
        rejected="Lyon.",
    )
    assert list(hh.dump_hh([record])) == [json.dumps(row, ensure_ascii=False) + "\n"]


def test_it_keeps_hh_pairs_that_part_ways_before_the_last_turn():
    row = {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Bye\n\nAssistant: Bye!",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Go away.\n\nHuman: Bye\n\nAssistant: Finally.",
    }
    [(_, record)] = list(hh.parse_hh(lines(row)))
    assert record.prompt == "Hi"
    assert record.chosen == "Hello!\n\nHuman: Bye\n\nAssistant: Bye!"
    assert list(hh.dump_hh([record])) == [json.dumps(row) + "\n"]


def test_it_reports_bad_hh_lines_with_their_numbers_and_reads_the_rest():
    good = {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"}
    parsed = list(
        hh.parse_hh(
            lines(
                good,
                "{not json",
                {"chosen": "no markers", "rejected": "at all"},
                {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: b"},
                "",
                {"chosen": "\n\nHuman: a\n\nAssistant:", "rejected": "\n\nHuman: a\n\nAssistant: c"},
                good,
            )
        )
    )
    errors = {n: r.reason for n, r in parsed if isinstance(r, LineError)}
    assert set(errors) == {2, 3, 4, 6}
    assert "invalid JSON" in errors[2]
    assert "share no prompt" in errors[3]
    assert "same text" in errors[4]
    assert "empty" in errors[6]
    assert [n for n, r in parsed if isinstance(r, Preference)] == [1, 7]


def test_it_reads_trl_preferences_plain_conversational_and_with_an_implicit_prompt():
    plain = {"prompt": "Sky colour?", "chosen": "Blue.", "rejected": "Green."}
    chat = {
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Sky colour?"}],
        "chosen": [{"role": "assistant", "content": "Blue."}],
        "rejected": [{"role": "assistant", "content": "Green."}],
    }
    implicit = {
        "chosen": [{"role": "user", "content": "Sky colour?"}, {"role": "assistant", "content": "Blue."}],
        "rejected": [{"role": "user", "content": "Sky colour?"}, {"role": "assistant", "content": "Green."}],
    }
    bad = {"chosen": "Blue.", "rejected": "Green."}
    parsed = dict(trl.parse_preferences(lines(plain, chat, implicit, bad)))
    assert parsed[1] == Preference("Sky colour?", "Blue.", "Green.")
    assert parsed[2] == Preference("System: Be brief.\n\nHuman: Sky colour?", "Blue.", "Green.")
    assert parsed[3] == parsed[1]
    assert isinstance(parsed[4], LineError) and "prompt is required" in parsed[4].reason
    assert list(trl.dump_preferences([parsed[2]], style="conversational")) == [json.dumps(chat) + "\n"]


def test_it_reads_trl_sft_messages_and_prompt_completion():
    messages = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
    pair = {"prompt": "Hi", "completion": "Hello!"}
    chat_pair = {
        "prompt": [{"role": "user", "content": "Hi"}],
        "completion": [{"role": "assistant", "content": "Hello!"}],
    }
    unfinished = {"messages": [{"role": "user", "content": "Hi"}]}
    parsed = dict(trl.parse_sft(lines(messages, pair, chat_pair, unfinished, {"text": "?"})))
    assert parsed[1] == parsed[2] == parsed[3] == Demonstration("Hi", "Hello!")
    assert "end with an assistant" in parsed[4].reason  # type: ignore[union-attr]
    assert isinstance(parsed[5], LineError)
    assert list(trl.dump_sft([parsed[1]])) == [json.dumps(messages) + "\n"]  # type: ignore[list-item]
    assert list(trl.dump_sft([parsed[1]], style="prompt-completion")) == [json.dumps(pair) + "\n"]  # type: ignore[list-item]


ARENA = {
    "question_id": "58210e39b3fd4441a2bd4a518bb44c2d",
    "model_a": "chatglm-6b",
    "model_b": "koala-13b",
    "winner": "model_b",
    "judge": "arena_user_973",
    "conversation_a": [
        {"role": "user", "content": "What is the difference between OpenCL and CUDA?"},
        {"role": "assistant", "content": "OpenCL and CUDA are two different programming models."},
    ],
    "conversation_b": [
        {"role": "user", "content": "What is the difference between OpenCL and CUDA?"},
        {"role": "assistant", "content": "OpenCL is open; CUDA is NVIDIA's."},
    ],
    "turn": 1,
    "anony": True,
    "language": "English",
    "tstamp": 1682351591.1322,
}


def test_it_reads_arena_battles_and_writes_the_same_schema():
    [(_, battle)] = list(arena.parse_battles(lines(ARENA)))
    assert battle == Battle(
        question_id=ARENA["question_id"],
        model_a="chatglm-6b",
        model_b="koala-13b",
        winner="b",
        judge="arena_user_973",
        prompt="What is the difference between OpenCL and CUDA?",
        response_a="OpenCL and CUDA are two different programming models.",
        response_b="OpenCL is open; CUDA is NVIDIA's.",
        tstamp=1682351591.1322,
    )
    [line] = arena.dump_battles([battle])
    written = json.loads(line)
    for key in (
        "question_id",
        "model_a",
        "model_b",
        "winner",
        "judge",
        "conversation_a",
        "conversation_b",
        "turn",
    ):
        assert written[key] == ARENA[key], key
    assert written["tstamp"] == ARENA["tstamp"]


def test_it_maps_every_arena_winner_and_refuses_others():
    rows = [ARENA | {"winner": w} for w in ("model_a", "model_b", "tie", "tie (bothbad)", "model_c")]
    parsed = [r for _, r in arena.parse_battles(lines(*rows))]
    assert [getattr(r, "winner", None) for r in parsed] == ["a", "b", "tie", "both_bad", None]
    assert "winner must be one of" in parsed[4].reason  # type: ignore[union-attr]


def oasst_tree() -> dict:
    def msg(mid, role, text, rank=None, replies=()):
        return {
            "message_id": mid,
            "role": role,
            "text": text,
            "rank": rank,
            "replies": list(replies),
            "lang": "en",
        }

    return {
        "message_tree_id": "root",
        "tree_state": "ready_for_export",
        "prompt": msg(
            "root",
            "prompter",
            "Tell me a joke.",
            replies=[
                msg("a1", "assistant", "Why did the chicken...", rank=1),
                msg(
                    "a0",
                    "assistant",
                    "A pun walks into a bar.",
                    rank=0,
                    replies=[
                        msg(
                            "p2",
                            "prompter",
                            "Another one?",
                            replies=[
                                msg("b0", "assistant", "Knock knock.", rank=0),
                                msg("b1", "assistant", "No.", rank=2),
                                msg("b2", "assistant", "Maybe later.", rank=1),
                            ],
                        )
                    ],
                ),
                msg("a2", "assistant", "I don't know any.", rank=2),
                msg("ax", "assistant", "Unranked.", rank=None),
            ],
        ),
    }


def test_it_turns_ranked_oasst_siblings_into_ranked_groups_with_their_context():
    groups = [r for _, r in oasst.parse_trees(lines(oasst_tree()))]
    assert [g.prompt_id for g in groups] == ["root", "p2"]  # type: ignore[union-attr]
    top, deep = groups
    assert [r.message_id for r in top.replies] == ["a0", "a1", "a2"]  # type: ignore[union-attr]
    assert (
        deep.prompt == "Human: Tell me a joke.\n\nAssistant: A pun walks into a bar.\n\nHuman: Another one?"
    )  # type: ignore[union-attr]
    assert [r.message_id for r in deep.replies] == ["b0", "b2", "b1"]  # type: ignore[union-attr]


def test_it_reports_a_bad_oasst_subtree_and_keeps_the_rest_of_the_tree():
    tree = oasst_tree()
    tree["prompt"]["replies"][1]["replies"][0]["role"] = "robot"
    parsed = list(oasst.parse_trees(lines("[]", tree)))
    assert parsed[0] == (1, LineError("each line must be a JSON object"))
    errors = [(n, r.reason) for n, r in parsed[1:] if isinstance(r, LineError)]
    assert len(errors) == 1 and errors[0][0] == 2 and "role must be prompter or assistant" in errors[0][1]
    assert [r.prompt_id for _, r in parsed[1:] if not isinstance(r, LineError)] == ["root"]


def test_it_builds_trees_back_from_scored_groups():
    groups = [
        oasst.PromptGroup(
            "root",
            "Tell me a joke.",
            (
                oasst.ScoredReply("a1", "Why did the chicken...", 1.0),
                oasst.ScoredReply("a0", "A pun walks into a bar.", 2.0),
            ),
        ),
        oasst.PromptGroup(
            "",
            "Human: Tell me a joke.\n\nAssistant: A pun walks into a bar.\n\nHuman: Another one?",
            (oasst.ScoredReply("", "Knock knock.", 0.5), oasst.ScoredReply("", "No.", 0.5)),
        ),
    ]
    [tree] = oasst.build_trees(groups)
    root = tree["prompt"]
    assert tree["message_tree_id"] == root["message_id"] == "root"
    assert [(r["message_id"], r["rank"]) for r in root["replies"]] == [("a0", 0), ("a1", 1)]
    [follow_up] = root["replies"][0]["replies"]
    assert follow_up["role"] == "prompter" and follow_up["text"] == "Another one?"
    assert follow_up["message_id"].startswith("flywheel-")
    # Equal scores keep the order they came in.
    assert [(r["text"], r["rank"]) for r in follow_up["replies"]] == [("Knock knock.", 0), ("No.", 1)]
    # Read back, the written tree gives the same groups.
    regrouped = [r for _, r in oasst.parse_trees(oasst.dump_trees([tree]))]
    assert [len(g.replies) for g in regrouped] == [2, 2]  # type: ignore[union-attr]
