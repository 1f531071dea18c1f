"""Heuristic quality rules for chat prompts and responses.

The rules and most numbers come from Gopher (Rae et al., 2021, appendix A)
and FineWeb's reimplementation of it in datatrove: mean word length 3-10, at
least 80% of words containing a letter, at least 2 stop words, top 2/3/4-gram
character coverage at most 0.20/0.18/0.16, at most 30% duplicate lines and
paragraphs, at most 90% bullet lines and 30% lines ending in an ellipsis, and a
symbol ('#', '...') to word ratio of at most 0.1.

Those numbers were tuned on web pages of 50 to 100,000 words. Chat turns are
shorter and differently shaped, so we changed them where a web-page rule would
reject good chat data:

* **Length.** Gopher wants >= 50 words. "Explain quantum entanglement" is a
  fine prompt (3 words) and "Paris." a fine answer (1 word), so prompts need
  2 words and responses 1; the upper bounds (4,000 / 8,000 words) only catch
  pasted dumps.
* **Rules that need enough text.** A mean over two words, or a stop-word count
  in a five-word prompt, says nothing. Each such rule has a minimum word count
  below which it is reported as "not applied" (it still passes): mean word
  length from 5 words, stop words from 15 words for prompts (terse
  instructions such as "Summarise: <pasted text>" skip articles) and 10 for
  responses, line-based rules from 3 non-blank lines.
* **Markdown and code.** Answers contain fenced code, headings and lists.
  Word-shape rules (mean length, letters, stop words, symbols, keyboard mash)
  look only at prose outside ``` fences; '#' at the start of a Markdown
  heading is not a symbol; and an all-bullet answer is normal ("List three
  ..."), so the bullet rule is off for responses and only applies to prompts.
* **n-gram coverage** counts only an n-gram that repeats: in a ten-word prompt
  every bigram is unique and Gopher's formula would still call the top one 20%
  "coverage". A repeat means twice, or three times in texts under 20 words so
  that "Tabs or spaces? Tabs or spaces?" survives while "hello hello hello
  hello" does not. Overlapping occurrences are not double counted.
* **Numbers and maths are not words.** Gopher counts "17", "*" and "2x" as words
  without letters, so every arithmetic or algebra prompt ("What is 17 * 23?",
  "Solve for x: 2x + 3 = 11") failed the 80%-have-a-letter rule and most
  worked answers the mean-word-length rule. Tokens made of digits, operators,
  brackets and one- or two-letter variables (with at least one digit or
  operator: "391", "x^2", "3x^2/2", "\\frac{1}{2}", "=") are left out of the
  word-shape rules, like code; the length rules still count them. A text with
  no prose left (a bare "391", or "2x = 8") passes the letter rule, as code does.
* **Longest word** (not in Gopher) rejects a single 80-character token in
  prose; URLs and file paths are exempt, code blocks are not looked at.
* **Keyboard mash** (not in Gopher): short junk such as "asdfghjkl qwerty"
  has letters, sane word lengths and is too short for the stop-word rule, so we
  flag Latin-script words of 4+ letters that are mostly runs of neighbouring
  keys on one QWERTY row, have six consonants in a row, or (from 5 letters) no
  vowel; all-caps acronyms are exempt. Real words trip it occasionally
  ("were", "tree"), so the rule fires only when at least half the words do.

Chinese/Japanese/Korean characters count as one word each and such tokens are
exempt from the longest-word cap, since those scripts do not space words
(Korean does, so its word count is inflated about threefold).

Known misses: non-English text fails the stop-word rule once it is long enough
(set ``min_stop_words`` to ``None`` for such projects); the keyboard-mash rule
only knows QWERTY; a string of bare numbers ("1234 5678 9999") has no prose and
passes the word-shape rules, so only the length rules and the learned classifier
see it.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "PROMPT_THRESHOLDS",
    "RESPONSE_THRESHOLDS",
    "Kind",
    "Measures",
    "RuleResult",
    "RuleThresholds",
    "evaluate",
    "failed_rules",
    "judge",
    "measure",
    "results_to_json",
    "thresholds_for",
]

Kind = Literal["prompt", "response"]


@dataclass(frozen=True)
class RuleThresholds:
    """Per-project limits. ``None`` switches a rule off (it is still measured)."""

    min_words: int = 2
    max_words: int | None = 4000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    mean_word_length_min_words: int = 5
    max_symbol_ratio: float | None = 0.1
    min_alpha_word_ratio: float | None = 0.8
    min_stop_words: int | None = 2
    stop_words_min_words: int = 15
    max_dup_line_fraction: float | None = 0.3
    max_dup_paragraph_fraction: float | None = 0.3
    max_top_2gram_coverage: float | None = 0.20
    max_top_3gram_coverage: float | None = 0.18
    max_top_4gram_coverage: float | None = 0.16
    max_bullet_line_ratio: float | None = 0.9
    max_ellipsis_line_ratio: float | None = 0.3
    line_rules_min_lines: int = 3
    max_word_length: int | None = 60
    max_keyboard_mash_ratio: float | None = 0.5


PROMPT_THRESHOLDS = RuleThresholds()
RESPONSE_THRESHOLDS = RuleThresholds(
    min_words=1,
    max_words=8000,
    stop_words_min_words=10,
    max_bullet_line_ratio=None,
)
_DEFAULTS: dict[str, RuleThresholds] = {
    "prompt": PROMPT_THRESHOLDS,
    "response": RESPONSE_THRESHOLDS,
}


def thresholds_for(kind: Kind, overrides: Mapping[str, Any] | None = None) -> RuleThresholds:
    """Defaults for ``kind`` with a project's ``overrides`` (e.g. from a JSON field) applied."""
    if kind not in _DEFAULTS:
        raise ValueError(f"kind must be 'prompt' or 'response', not {kind!r}")
    if not overrides:
        return _DEFAULTS[kind]
    known = {f.name for f in dataclasses.fields(RuleThresholds)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown rule thresholds: {', '.join(unknown)}")
    return dataclasses.replace(_DEFAULTS[kind], **overrides)


@dataclass(frozen=True)
class RuleResult:
    """One rule on one text. ``threshold`` is a number, ``[min, max]`` or ``None``."""

    name: str
    value: float
    threshold: float | list[float | None] | None
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "threshold": self.threshold,
            "passed": self.passed,
            "message": self.message,
        }


def results_to_json(results: list[RuleResult]) -> list[dict[str, Any]]:
    return [result.to_dict() for result in results]


def failed_rules(results: list[RuleResult]) -> list[str]:
    return [result.name for result in results if not result.passed]


# A small English function-word list: Gopher's eight plus the commonest
# pronouns, auxiliaries and prepositions, so that short well-formed English
# reliably has two of them. A paragraph of words reads better than 130
# one-per-line list items, hence the string.
_STOP_WORDS_TEXT = """
    a about above after again all also am an and any are as at be because been
    before being between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in
    into is it its itself just me more most my no nor not now of off on once only
    or other our out over own same she should so some such than that the their
    them then there these they this those through to too under until up very was
    we were what when where which while who whom why will with would you your
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())

_SHORT_TEXT_WORDS = 20
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# Markdown list/heading/quote markers are layout, not words.
_MARKER_RE = re.compile(r"^(?:[-*+•‣◦▪●–>]|#{1,6}|\d{1,3}[.)])$")
_FENCE_RE = re.compile(r"^\s*(```|~~~)")
_PUNCT_ONLY_RE = re.compile(r"^[^\w\s]+$")
# Operators, as a character class body: those that sit between terms, and the others.
_OPERATORS = r"=+\-−*/^<>×÷·≤≥≈≠±"
_MATH_SYMBOLS = _OPERATORS + "√∑∫∞"
# A character without which a token cannot be maths (see _MATH_TOKEN_RE's lookahead).
_MATH_CHAR_RE = re.compile(rf"[\d{_MATH_SYMBOLS}\\]")
# What makes a maths-shaped token maths on its own: a digit, a LaTeX command, or an operator
# with a letter ("x^2", "a+b").
_MATH_ANCHOR_RE = re.compile(rf"\d|\\[A-Za-z]|[A-Za-z].*[{_OPERATORS}]|[{_OPERATORS}].*[A-Za-z]")
# A token of arithmetic or algebra: digits, operators, brackets, punctuation, LaTeX commands and
# variables of at most two letters, with at least one digit, operator or command in it.
_MATH_TOKEN_RE = re.compile(
    rf"^(?=.*(?:[\d{_MATH_SYMBOLS}]|\\[A-Za-z]))"
    rf"(?:\\[A-Za-z]+|(?<![A-Za-z])[A-Za-z]{{1,2}}(?![A-Za-z])|[\d.,:;%'$_|!?()\[\]{{}}{_MATH_SYMBOLS}π])+$"
)
_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s")
_BULLET_RE = re.compile(r"^\s*(?:[-*+•‣◦▪●–]|\d{1,3}[.)])\s")
_ELLIPSIS_END_RE = re.compile(r"(?:\.\.\.|…)\s*$")
_URL_RE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|www\.)\S+$", re.IGNORECASE)
_EDGE_PUNCT = "\"'`()[]{}<>.,;:!?*_~-–—…«»“”‘’"
_VOWELS = frozenset("aeiouyàáâäãåèéêëìíîïòóôöõùúûüýÿæœø")
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEY_POSITION = {char: (row, col) for row, keys in enumerate(_KEYBOARD_ROWS) for col, char in enumerate(keys)}
_LATIN = frozenset("abcdefghijklmnopqrstuvwxyz") | _VOWELS
# Six consonants in a row: "strengths" has five, "fjdksl" six.
_RUN_RE = re.compile(r"[^aeiouy\W\d_]{6,}")


@dataclass
class _Text:
    tokens: list[str]
    prose_tokens: list[str]
    prose_words: list[str]
    prose: str
    lines: list[str]
    paragraphs: list[str]


def _split(text: str) -> _Text:
    prose_lines: list[str] = []
    in_code = False
    for line in text.splitlines():
        if _FENCE_RE.match(line):
            in_code = not in_code
            continue
        if not in_code:
            prose_lines.append(line)
    prose = "\n".join(prose_lines)
    tokens = prose.split()
    prose_tokens = [
        token
        for token, is_math in zip(tokens, _math_mask(tokens), strict=True)
        if not is_math and not _MARKER_RE.match(token)
    ]
    prose_words = [word for word in (token.strip(_EDGE_PUNCT) for token in prose_tokens) if word]
    lines = [line.strip() for line in prose_lines if line.strip()]
    paragraphs = [" ".join(block.split()) for block in re.split(r"\n\s*\n", prose) if block.strip()]
    return _Text(
        tokens=text.split(),
        prose_tokens=prose_tokens,
        prose_words=prose_words,
        prose=prose,
        lines=lines,
        paragraphs=paragraphs,
    )


def _math_mask(tokens: list[str]) -> list[bool]:
    """Which tokens are arithmetic or algebra rather than words.

    A token with a digit, a LaTeX command, or an operator and a letter ("391", "2x", "x^2",
    "\\frac{1}{2}") is maths. A bare operator ("=", "+", "*") is maths next to one of those
    or to a one-letter variable, so "a + b" is maths and "*** ***" or ">>> here <<<" is not;
    and bare punctuation right after maths ("2 + 2 = ?") belongs to it.
    """
    # Most tokens have no digit, operator or backslash and cannot be maths: only the others
    # are looked at (curation measures every item; this keeps the rules' cost near Gopher's).
    shaped = {i for i, t in enumerate(tokens) if _MATH_CHAR_RE.search(t) and _MATH_TOKEN_RE.match(t)}
    mask = [False] * len(tokens)
    if not shaped:
        return mask
    anchor = {i for i in shaped if _MATH_ANCHOR_RE.search(tokens[i])}
    for i in shaped:
        mask[i] = i in anchor or any(
            j in anchor or (0 <= j < len(tokens) and len(tokens[j]) == 1 and tokens[j].isalpha())
            for j in (i - 1, i + 1)
        )
    for i in range(1, len(tokens)):
        if not mask[i] and mask[i - 1] and _PUNCT_ONLY_RE.match(tokens[i]):
            mask[i] = True
    return mask


def _dup_fraction(items: list[str]) -> float:
    if not items:
        return 0.0
    return (len(items) - len(set(items))) / len(items)


def _top_ngram_coverage(words: list[str], n: int) -> float:
    """Share of word characters inside occurrences of the most frequent n-gram."""
    if len(words) < n:
        return 0.0
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    top, count = Counter(grams).most_common(1)[0]
    if count < (2 if len(words) >= _SHORT_TEXT_WORDS else 3):
        return 0.0
    covered = [False] * len(words)
    for start, gram in enumerate(grams):
        if gram == top:
            covered[start : start + n] = [True] * n
    total = sum(len(word) for word in words)
    return sum(len(word) for word, hit in zip(words, covered, strict=True) if hit) / total


def _is_mash(word: str) -> bool:
    if word.isupper():
        # Acronyms: "HTML", "SQL".
        return False
    letters = [char for char in word.lower() if char.isalpha()]
    if len(letters) < 4 or any(char not in _LATIN for char in letters):
        # The keyboard and vowel heuristics only mean something for Latin script.
        return False
    if len(letters) >= 5 and not any(char in _VOWELS for char in letters):
        return True
    if _RUN_RE.search("".join(letters)):
        return True
    positions = [_KEY_POSITION.get(char) for char in letters]
    near = 0
    for left, right in itertools.pairwise(positions):
        if left and right and left[0] == right[0] and abs(left[1] - right[1]) <= 2:
            near += 1
    return near / (len(letters) - 1) >= 0.75


def _is_path(token: str) -> bool:
    return token.count("/") >= 2 or token.count("\\") >= 2


def _range_rule(name: str, value: float, low: float | None, high: float | None, unit: str) -> RuleResult:
    passed = (low is None or value >= low) and (high is None or value <= high)
    shown = f"{value:g}"
    bounds = f"[{'-' if low is None else f'{low:g}'}, {'-' if high is None else f'{high:g}'}]"
    message = f"{unit} {shown} within {bounds}" if passed else f"{unit} {shown} outside {bounds}"
    return RuleResult(name, value, [low, high], passed, message)


def _max_rule(name: str, value: float, limit: float | None, what: str) -> RuleResult:
    if limit is None:
        return RuleResult(name, value, None, True, f"{what} {value:.3g}; rule off")
    passed = value <= limit
    relation = "<=" if passed else ">"
    return RuleResult(name, value, limit, passed, f"{what} {value:.3g} {relation} {limit:g}")


def _not_applied(name: str, value: float, threshold: Any, reason: str) -> RuleResult:
    return RuleResult(name, value, threshold, True, f"not applied: {reason}")


@dataclass(frozen=True)
class Measures:
    """Everything the rules measure on one text, before any limit is applied.

    ``judge`` turns it into rule results under any limits, so a stored ``Measures`` answers
    "what would these limits say?" without the text. Besides each rule's value it keeps the
    counts the rules' "only from N words/lines" gates read.
    """

    word_count: int
    prose_words: int
    mean_word_length: float  # unrounded; the rule compares it rounded to 3 places
    symbol_ratio: float
    alpha_words: float
    stop_words: int
    lines: int  # non-blank prose lines
    dup_line_fraction: float
    paragraphs: int
    dup_paragraph_fraction: float
    top_2gram_coverage: float
    top_3gram_coverage: float
    top_4gram_coverage: float
    bullet_line_ratio: float
    ellipsis_line_ratio: float
    longest_word: int
    keyboard_mash: float

    def compared(self) -> dict[str, float]:
        """Each rule's value exactly as ``judge`` compares it with a limit, by rule name."""
        return {
            "word_count": self.word_count,
            "mean_word_length": round(self.mean_word_length, 3),
            "symbol_ratio": self.symbol_ratio,
            "alpha_words": self.alpha_words,
            "stop_words": self.stop_words,
            "dup_line_fraction": self.dup_line_fraction,
            "dup_paragraph_fraction": self.dup_paragraph_fraction,
            "top_2gram_coverage": self.top_2gram_coverage,
            "top_3gram_coverage": self.top_3gram_coverage,
            "top_4gram_coverage": self.top_4gram_coverage,
            "bullet_line_ratio": self.bullet_line_ratio,
            "ellipsis_line_ratio": self.ellipsis_line_ratio,
            "longest_word": self.longest_word,
            "keyboard_mash": self.keyboard_mash,
        }


def measure(text: str) -> Measures:
    """Measure ``text`` for every rule. The kind (prompt or response) only changes the limits,
    so one measurement serves both."""
    parts = _split(text)
    # Chinese and Japanese do not separate words with spaces; counting each
    # ideograph/kana as a word is the usual rough equivalent.
    word_count = sum(max(1, len(_CJK_RE.findall(token))) for token in parts.tokens)
    prose_count = len(parts.prose_words)
    mean_length = sum(len(word) for word in parts.prose_words) / prose_count if prose_count else 0.0

    body = "\n".join(line for line in parts.prose.splitlines() if not _HEADING_RE.match(line))
    symbols = body.count("#") + body.count("...") + body.count("…")
    symbol_ratio = symbols / len(parts.prose_tokens) if parts.prose_tokens else 0.0
    with_alpha = sum(1 for token in parts.prose_tokens if any(char.isalpha() for char in token))
    alpha_ratio = with_alpha / len(parts.prose_tokens) if parts.prose_tokens else 1.0
    stop_count = sum(1 for word in parts.prose_words if word.lower() in STOP_WORDS)

    gram_words = [word.lower() for word in parts.prose_words]
    coverage = {n: round(_top_ngram_coverage(gram_words, n), 4) for n in (2, 3, 4)}
    bullet_ratio = (
        sum(1 for line in parts.lines if _BULLET_RE.match(line)) / len(parts.lines) if parts.lines else 0.0
    )
    ellipsis_ratio = (
        sum(1 for line in parts.lines if _ELLIPSIS_END_RE.search(line)) / len(parts.lines)
        if parts.lines
        else 0.0
    )
    longest = max(
        (
            len(token)
            for token in parts.prose_tokens
            if not _URL_RE.match(token) and not _is_path(token) and not _CJK_RE.search(token)
        ),
        default=0,
    )
    alpha_words = [word for word in parts.prose_words if any(char.isalpha() for char in word)]
    mash_ratio = sum(1 for word in alpha_words if _is_mash(word)) / len(alpha_words) if alpha_words else 0.0
    return Measures(
        word_count=word_count,
        prose_words=prose_count,
        mean_word_length=mean_length,
        symbol_ratio=symbol_ratio,
        alpha_words=alpha_ratio,
        stop_words=stop_count,
        lines=len(parts.lines),
        dup_line_fraction=_dup_fraction(parts.lines),
        paragraphs=len(parts.paragraphs),
        dup_paragraph_fraction=_dup_fraction(parts.paragraphs),
        top_2gram_coverage=coverage[2],
        top_3gram_coverage=coverage[3],
        top_4gram_coverage=coverage[4],
        bullet_line_ratio=bullet_ratio,
        ellipsis_line_ratio=ellipsis_ratio,
        longest_word=longest,
        keyboard_mash=mash_ratio,
    )


def judge(measured: Measures, limits: RuleThresholds) -> list[RuleResult]:
    """The rules' verdicts on a measured text under ``limits``: one :class:`RuleResult` per
    rule, always in the same order."""
    m = measured
    results = [_range_rule("word_count", m.word_count, limits.min_words, limits.max_words, "words")]

    if m.prose_words < limits.mean_word_length_min_words:
        results.append(
            _not_applied(
                "mean_word_length",
                m.mean_word_length,
                [limits.min_mean_word_length, limits.max_mean_word_length],
                f"{m.prose_words} prose words < {limits.mean_word_length_min_words}",
            )
        )
    else:
        results.append(
            _range_rule(
                "mean_word_length",
                round(m.mean_word_length, 3),
                limits.min_mean_word_length,
                limits.max_mean_word_length,
                "mean word length",
            )
        )

    results.append(_max_rule("symbol_ratio", m.symbol_ratio, limits.max_symbol_ratio, "symbols per word"))

    if limits.min_alpha_word_ratio is None:
        results.append(RuleResult("alpha_words", m.alpha_words, None, True, "rule off"))
    else:
        passed = m.alpha_words >= limits.min_alpha_word_ratio
        relation = ">=" if passed else "<"
        results.append(
            RuleResult(
                "alpha_words",
                m.alpha_words,
                limits.min_alpha_word_ratio,
                passed,
                f"{m.alpha_words:.0%} of words have a letter, {relation} {limits.min_alpha_word_ratio:.0%}",
            )
        )

    if limits.min_stop_words is None:
        results.append(RuleResult("stop_words", m.stop_words, None, True, "rule off"))
    elif m.prose_words < limits.stop_words_min_words:
        results.append(
            _not_applied(
                "stop_words",
                m.stop_words,
                limits.min_stop_words,
                f"{m.prose_words} prose words < {limits.stop_words_min_words}",
            )
        )
    else:
        passed = m.stop_words >= limits.min_stop_words
        results.append(
            RuleResult(
                "stop_words",
                m.stop_words,
                limits.min_stop_words,
                passed,
                f"{m.stop_words} stop words, need {limits.min_stop_words}",
            )
        )

    enough_lines = m.lines >= limits.line_rules_min_lines
    line_reason = f"{m.lines} non-blank lines < {limits.line_rules_min_lines}"
    if enough_lines:
        results.append(
            _max_rule(
                "dup_line_fraction", m.dup_line_fraction, limits.max_dup_line_fraction, "duplicate lines"
            )
        )
    else:
        results.append(
            _not_applied("dup_line_fraction", m.dup_line_fraction, limits.max_dup_line_fraction, line_reason)
        )
    if m.paragraphs >= 2:
        results.append(
            _max_rule(
                "dup_paragraph_fraction",
                m.dup_paragraph_fraction,
                limits.max_dup_paragraph_fraction,
                "duplicate paragraphs",
            )
        )
    else:
        results.append(
            _not_applied(
                "dup_paragraph_fraction",
                m.dup_paragraph_fraction,
                limits.max_dup_paragraph_fraction,
                "fewer than 2 paragraphs",
            )
        )

    for n, coverage, limit in (
        (2, m.top_2gram_coverage, limits.max_top_2gram_coverage),
        (3, m.top_3gram_coverage, limits.max_top_3gram_coverage),
        (4, m.top_4gram_coverage, limits.max_top_4gram_coverage),
    ):
        results.append(_max_rule(f"top_{n}gram_coverage", coverage, limit, f"top {n}-gram coverage"))

    for name, value, limit, what in (
        ("bullet_line_ratio", m.bullet_line_ratio, limits.max_bullet_line_ratio, "bullet lines"),
        (
            "ellipsis_line_ratio",
            m.ellipsis_line_ratio,
            limits.max_ellipsis_line_ratio,
            "lines ending in '...'",
        ),
    ):
        if enough_lines:
            results.append(_max_rule(name, value, limit, what))
        else:
            results.append(_not_applied(name, value, limit, line_reason))

    results.append(_max_rule("longest_word", m.longest_word, limits.max_word_length, "longest word"))
    results.append(
        _max_rule("keyboard_mash", m.keyboard_mash, limits.max_keyboard_mash_ratio, "mashed words")
    )
    return results


def evaluate(
    text: str,
    thresholds: RuleThresholds | Mapping[str, Any] | None = None,
    kind: Kind = "prompt",
) -> list[RuleResult]:
    """Run every rule on ``text``; one :class:`RuleResult` per rule, always in the same order.

    ``thresholds`` is a full :class:`RuleThresholds`, a mapping of overrides on
    the defaults for ``kind``, or ``None`` for the defaults.
    """
    if thresholds is None or isinstance(thresholds, Mapping):
        limits = thresholds_for(kind, thresholds)
    else:
        limits = thresholds
    return judge(measure(text), limits)
