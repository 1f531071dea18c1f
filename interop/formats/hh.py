"""Anthropic HH-RLHF: {"chosen": transcript, "rejected": transcript}, each a whole
conversation "\\n\\nHuman: ...\\n\\nAssistant: ...". The two share everything up to the last
assistant turn they both start; that shared part is the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from interop.formats.common import BadRecord, LineError, Preference, dumps, json_lines, text_field
from interop.formats.conversation import ROLES, Turn, parse_prompt, render_prompt, transcript

ASSISTANT = "\n\nAssistant:"
# HH writes "Human: text"; a few rows have no space after the colon.
_MARKER = re.compile(r"\n\n(System|Human|Assistant): ?")
_ROLE_OF = {"System": ROLES[0], "Human": ROLES[1], "Assistant": ROLES[2]}


def _turns(prefix: str) -> list[Turn]:
    parts = _MARKER.split(prefix)
    if parts[0] != "" or len(parts) < 3:
        raise BadRecord('the conversation must start with "\\n\\nHuman: "')
    return [Turn(_ROLE_OF[parts[i]], parts[i + 1]) for i in range(1, len(parts), 2)]


def _shared_length(first: str, second: str) -> int:
    n, limit = 0, min(len(first), len(second))
    while n < limit and first[n] == second[n]:
        n += 1
    return n


def _answer(text: str) -> str:
    # The space after "Assistant:" belongs to the format, not to the answer.
    return text[1:] if text.startswith(" ") else text


def _preference(record: dict[str, Any]) -> Preference:
    chosen, rejected = text_field(record, "chosen"), text_field(record, "rejected")
    if chosen == rejected:
        raise BadRecord("chosen and rejected are the same text")
    shared = chosen[: _shared_length(chosen, rejected)]
    cut = shared.rfind(ASSISTANT)
    if cut < 0:
        raise BadRecord('chosen and rejected share no prompt ending in "\\n\\nAssistant:"')
    context = _turns(chosen[:cut])
    if context[-1].role != "user":
        raise BadRecord("the shared prompt must end with a Human turn")
    chosen_answer = _answer(chosen[cut + len(ASSISTANT) :])
    rejected_answer = _answer(rejected[cut + len(ASSISTANT) :])
    for name, answer in (("chosen", chosen_answer), ("rejected", rejected_answer)):
        if not answer.strip():
            raise BadRecord(f"the {name} answer is empty")
    return Preference(prompt=render_prompt(context), chosen=chosen_answer, rejected=rejected_answer)


def parse_hh(lines: Iterable[bytes | str]) -> Iterator[tuple[int, Preference | LineError]]:
    for number, record in json_lines(lines):
        if isinstance(record, LineError):
            yield number, record
            continue
        try:
            yield number, _preference(record)
        except BadRecord as exc:
            yield number, LineError(str(exc))


def dump_hh(rows: Iterable[Preference]) -> Iterator[str]:
    for row in rows:
        prompt = transcript(parse_prompt(row.prompt))
        yield dumps(
            {
                "chosen": f"{prompt}{ASSISTANT} {row.chosen}",
                "rejected": f"{prompt}{ASSISTANT} {row.rejected}",
            }
        )
