"""TRL dataset formats (https://huggingface.co/docs/trl/dataset_formats).

Preference: {"prompt", "chosen", "rejected"}, either plain strings or conversational (lists of
{"role", "content"} messages); conversational rows may leave out "prompt" (implicit prompt),
in which case the messages chosen and rejected share are the prompt.

SFT: {"messages": [...]} (the last message is the answer) or {"prompt", "completion"}, plain
or conversational.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from interop.formats.common import (
    BadRecord,
    Demonstration,
    LineError,
    Preference,
    dumps,
    json_lines,
    text_field,
)
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

PREFERENCE_STYLES = ("standard", "conversational")
SFT_STYLES = ("messages", "prompt-completion")


def _preference(record: dict[str, Any]) -> Preference:
    chosen, rejected = record.get("chosen"), record.get("rejected")
    if chosen is None or rejected is None:
        raise BadRecord("chosen and rejected are required")
    if isinstance(chosen, str) and isinstance(rejected, str):
        if "prompt" not in record:
            raise BadRecord("prompt is required when chosen and rejected are plain strings")
        prompt = text_field(record, "prompt")
        text_field(record, "chosen")
        text_field(record, "rejected")
        return _distinct(Preference(prompt=prompt, chosen=chosen, rejected=rejected))
    if isinstance(chosen, str) or isinstance(rejected, str):
        raise BadRecord("chosen and rejected must both be strings or both be lists of messages")
    chosen_turns = messages_to_turns(chosen, field="chosen")
    rejected_turns = messages_to_turns(rejected, field="rejected")
    if "prompt" in record:
        context = messages_to_turns(record["prompt"], field="prompt")
    else:
        # Implicit prompt: the shared opening of both conversations.
        shared = 0
        while (
            shared < min(len(chosen_turns), len(rejected_turns))
            and chosen_turns[shared] == rejected_turns[shared]
        ):
            shared += 1
        while shared and chosen_turns[shared - 1].role != "user":
            shared -= 1
        context, chosen_turns, rejected_turns = (
            chosen_turns[:shared],
            chosen_turns[shared:],
            rejected_turns[shared:],
        )
    check_context(context, field="prompt")
    check_answer(chosen_turns, field="chosen")
    check_answer(rejected_turns, field="rejected")
    return _distinct(
        Preference(
            prompt=render_prompt(context),
            chosen=render_response(chosen_turns),
            rejected=render_response(rejected_turns),
        )
    )


def _distinct(preference: Preference) -> Preference:
    if preference.chosen == preference.rejected:
        raise BadRecord("chosen and rejected are the same text")
    return preference


def parse_preferences(lines: Iterable[bytes | str]) -> Iterator[tuple[int, Preference | LineError]]:
    for number, record in json_lines(lines):
        if isinstance(record, LineError):
            yield number, record
            continue
        try:
            yield number, _preference(record)
        except BadRecord as exc:
            yield number, LineError(str(exc))


def dump_preferences(rows: Iterable[Preference], *, style: str = "standard") -> Iterator[str]:
    for row in rows:
        if style == "conversational":
            yield dumps(
                {
                    "prompt": turns_to_messages(parse_prompt(row.prompt)),
                    "chosen": turns_to_messages(parse_response(row.chosen)),
                    "rejected": turns_to_messages(parse_response(row.rejected)),
                }
            )
        else:
            yield dumps({"prompt": row.prompt, "chosen": row.chosen, "rejected": row.rejected})


def _demonstration(record: dict[str, Any]) -> Demonstration:
    if "messages" in record:
        turns = messages_to_turns(record["messages"], field="messages")
        # The last assistant message is the answer; what precedes it is the prompt.
        last = max((i for i, turn in enumerate(turns) if turn.role == "assistant"), default=-1)
        if last != len(turns) - 1:
            raise BadRecord("messages must end with an assistant message")
        context, answer = turns[:last], turns[last:]
    elif "prompt" in record and "completion" in record:
        prompt, completion = record["prompt"], record["completion"]
        if isinstance(prompt, str) and isinstance(completion, str):
            return Demonstration(
                prompt=text_field(record, "prompt"), completion=text_field(record, "completion")
            )
        context = messages_to_turns(prompt, field="prompt")
        answer = messages_to_turns(completion, field="completion")
    else:
        raise BadRecord('each line needs "messages", or "prompt" and "completion"')
    check_context(context, field="prompt")
    check_answer(answer, field="completion")
    return Demonstration(prompt=render_prompt(context), completion=render_response(answer))


def parse_sft(lines: Iterable[bytes | str]) -> Iterator[tuple[int, Demonstration | LineError]]:
    for number, record in json_lines(lines):
        if isinstance(record, LineError):
            yield number, record
            continue
        try:
            yield number, _demonstration(record)
        except BadRecord as exc:
            yield number, LineError(str(exc))


def dump_sft(rows: Iterable[Demonstration], *, style: str = "messages") -> Iterator[str]:
    for row in rows:
        if style == "prompt-completion":
            yield dumps({"prompt": row.prompt, "completion": row.completion})
        else:
            turns: list[Turn] = [*parse_prompt(row.prompt), *parse_response(row.completion)]
            yield dumps({"messages": turns_to_messages(turns)})
