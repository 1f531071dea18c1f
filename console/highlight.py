"""Marked-up views of stored text: PII spans and word-level differences.

Pure functions returning HTML strings in which every character of the text has been escaped
(html.escape) and the only tags are the ones added here: <mark>, <del> and <ins>. Callers mark
the result safe; nothing else about it needs trusting.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

_TOKEN = re.compile(r"\s+|[^\s]+")
_PUNCT = re.compile(r"[^\w]+")
# Diffs of very long texts are quadratic in the worst case; past this many tokens per side
# the rest is shown without highlighting, and the view says so.
MAX_DIFF_TOKENS = 6000


def highlight_spans(text: str, spans: Iterable[Mapping[str, Any]]) -> str:
    """`text` escaped, with each {kind, start, end} span wrapped in <mark class="pii">."""
    out: list[str] = []
    cursor = 0
    for span in sorted(spans, key=lambda s: (int(s["start"]), int(s["end"]))):
        start, end = max(int(span["start"]), cursor), min(int(span["end"]), len(text))
        if end <= start:
            continue
        kind = escape(str(span.get("kind", "pii")), quote=True)
        out.append(escape(text[cursor:start]))
        out.append(f'<mark class="pii" title="{kind}" data-kind="{kind}">{escape(text[start:end])}</mark>')
        cursor = end
    out.append(escape(text[cursor:]))
    return "".join(out)


def _keys(tokens: list[str]) -> list[str]:
    # Compared as the exact-duplicate hash compares them: case, punctuation and spacing are
    # not differences, so an upper-cased copy shows as identical.
    return [" " if token.isspace() else _PUNCT.sub("", token.casefold()) or token for token in tokens]


def word_diff(before: str, after: str) -> tuple[str, str, bool]:
    """Both texts escaped, words only in `before` in <del>, words only in `after` in <ins>.
    Words that differ only in case or punctuation are not marked.

    Returns (before_html, after_html, truncated): truncated is True when the texts were too
    long to diff in full and their tails are shown unmarked.
    """
    a, b = _TOKEN.findall(before), _TOKEN.findall(after)
    truncated = len(a) > MAX_DIFF_TOKENS or len(b) > MAX_DIFF_TOKENS
    a_head, b_head = a[:MAX_DIFF_TOKENS], b[:MAX_DIFF_TOKENS]
    # autojunk off: on texts over 200 words it would treat common words as noise and
    # report whole sentences as changed.
    matcher = difflib.SequenceMatcher(None, _keys(a_head), _keys(b_head), autojunk=False)
    left: list[str] = []
    right: list[str] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        old, new = "".join(a_head[i1:i2]), "".join(b_head[j1:j2])
        if op == "equal":
            left.append(escape(old))
            right.append(escape(new))
            continue
        if old.strip():
            left.append(f"<del>{escape(old)}</del>")
        else:
            left.append(escape(old))
        if new.strip():
            right.append(f"<ins>{escape(new)}</ins>")
        else:
            right.append(escape(new))
    left.append(escape("".join(a[MAX_DIFF_TOKENS:])))
    right.append(escape("".join(b[MAX_DIFF_TOKENS:])))
    return "".join(left), "".join(right), truncated
