"""Chatbot Arena battles (lmsys/chatbot_arena_conversations, lmsys/mt_bench_human_judgments).

One vote per line: question_id, model_a, model_b, winner ("model_a", "model_b", "tie",
"tie (bothbad)"), judge, conversation_a and conversation_b (lists of {"role", "content"}),
tstamp. Both conversations open with the same user turn; the rest of each conversation is
that model's response. Export writes the same schema, so any Elo or Bradley-Terry leaderboard
script for Arena data runs on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from interop.formats.common import BadRecord, Battle, LineError, dumps, id_field, json_lines, text_field
from interop.formats.conversation import (
    Turn,
    check_answer,
    check_context,
    messages_to_turns,
    parse_prompt,
    parse_response,
    render_prompt,
    render_response,
    turns_to_messages,
)

WINNERS = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "both_bad"}
_WINNER_OF_CHOICE = {choice: winner for winner, choice in WINNERS.items()}


def _conversation(record: dict[str, Any], field: str) -> tuple[list[Turn], list[Turn]]:
    """The opening user turns, and the model's part from its first answer on."""
    turns = messages_to_turns(record.get(field), field=field)
    first_answer = next((i for i, turn in enumerate(turns) if turn.role == "assistant"), len(turns))
    context, answer = turns[:first_answer], turns[first_answer:]
    check_context(context, field=field)
    check_answer(answer, field=field)
    return context, answer


def _battle(record: dict[str, Any]) -> Battle:
    winner = record.get("winner")
    if winner not in WINNERS:
        raise BadRecord(f"winner must be one of {', '.join(repr(w) for w in WINNERS)}")
    context_a, answer_a = _conversation(record, "conversation_a")
    context_b, answer_b = _conversation(record, "conversation_b")
    if context_a != context_b:
        raise BadRecord("conversation_a and conversation_b open with different user turns")
    tstamp = record.get("tstamp")
    if tstamp is not None and (
        isinstance(tstamp, bool)
        or not isinstance(tstamp, int | float)
        or not math.isfinite(tstamp)
        or not 0 <= tstamp < 1e11
    ):
        raise BadRecord("tstamp must be a number of seconds since 1970")
    response_a, response_b = render_response(answer_a), render_response(answer_b)
    model_a, model_b = text_field(record, "model_a"), text_field(record, "model_b")
    if (model_a, response_a) == (model_b, response_b):
        raise BadRecord("model_a and model_b gave the same response")
    return Battle(
        question_id=id_field(record, "question_id"),
        model_a=model_a,
        model_b=model_b,
        winner=WINNERS[winner],
        judge=id_field(record, "judge", required=False),
        prompt=render_prompt(context_a),
        response_a=response_a,
        response_b=response_b,
        tstamp=float(tstamp) if tstamp is not None else None,
    )


def parse_battles(lines: Iterable[bytes | str]) -> Iterator[tuple[int, Battle | LineError]]:
    for number, record in json_lines(lines):
        if isinstance(record, LineError):
            yield number, record
            continue
        try:
            yield number, _battle(record)
        except BadRecord as exc:
            yield number, LineError(str(exc))


def _question_id(value: str) -> str | int:
    # MT-bench numbers its questions; keep them numbers so a round trip gives the same bytes.
    return int(value) if value.isdigit() and str(int(value)) == value else value


def dump_battles(rows: Iterable[Battle], *, numeric_ids: bool = True) -> Iterator[str]:
    """numeric_ids=False writes every question_id as a string, as a typed column (Parquet) needs."""
    for row in rows:
        context = parse_prompt(row.prompt)
        conversation_a = turns_to_messages([*context, *parse_response(row.response_a)])
        conversation_b = turns_to_messages([*context, *parse_response(row.response_b)])
        yield dumps(
            {
                "question_id": _question_id(row.question_id) if numeric_ids else row.question_id,
                "model_a": row.model_a,
                "model_b": row.model_b,
                "winner": _WINNER_OF_CHOICE[row.winner],
                "judge": row.judge,
                "conversation_a": conversation_a,
                "conversation_b": conversation_b,
                "turn": max(
                    sum(1 for message in conversation if message["role"] == "user")
                    for conversation in (conversation_a, conversation_b)
                ),
                "tstamp": row.tstamp,
            }
        )
