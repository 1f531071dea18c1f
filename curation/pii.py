"""Find and redact personal data and secrets in free text.

Detected kinds: ``email``, ``phone``, ``card`` (payment card numbers passing
the Luhn check) and ``secret`` (vendor API keys with a known shape, private
key blocks, and long high-entropy values assigned to a key-ish name such as
``api_key=`` or ``Authorization: Bearer``).

Everything here is regular expressions plus validation, tuned to keep false
positives low on chat and code: dates, times, version numbers, IP addresses,
UUIDs and short numbers are not phone or card numbers. Precision is favoured
over recall for phones (only international ``+`` numbers, North American
``(415) 555-2671`` forms and national numbers with a leading trunk ``0``), and
placeholders such as ``YOUR_API_KEY`` are not secrets. It is a safety net for
training data, not a DLP product.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

__all__ = ["KINDS", "PiiMatch", "find_pii", "redact"]

KINDS = ("secret", "card", "email", "phone")
_PLACEHOLDERS = {"email": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD]", "secret": "[SECRET]"}
# When detections overlap the more specific kind wins, e.g. a card number
# also looks like a phone number and a key can contain an '@'.
_PRIORITY = {kind: rank for rank, kind in enumerate(KINDS)}


@dataclass(frozen=True)
class PiiMatch:
    """A span ``text[start:end]`` of ``kind``; ``rule`` names the detector."""

    kind: str
    start: int
    end: int
    rule: str


# --- e-mail ------------------------------------------------------------------

_EMAIL_RE = re.compile(
    r"(?<![\w.%+-])"
    r"[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
    r"(?![\w-])"
)


def _emails(text: str) -> Iterator[PiiMatch]:
    for match in _EMAIL_RE.finditer(text):
        yield PiiMatch("email", match.start(), match.end(), "email")


# --- phone -------------------------------------------------------------------

# Not preceded/followed by something that would make the digits part of a
# longer token (an ID, a decimal number, a version, a date).
_PHONE_BEFORE = r"(?<![\w+.\-/:])"
_PHONE_AFTER = r"(?![\w]|[.\-/:]\d)"
_PHONE_RES = (
    (
        "phone_international",
        re.compile(_PHONE_BEFORE + r"\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,6}" + _PHONE_AFTER),
    ),
    (
        "phone_nanp",
        re.compile(_PHONE_BEFORE + r"(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}" + _PHONE_AFTER),
    ),
    (
        "phone_national",
        re.compile(_PHONE_BEFORE + r"\(?0[1-9]\d{0,3}\)?[ .-]\d{3,4}[ .-]?\d{3,4}" + _PHONE_AFTER),
    ),
)
_DIGIT_RE = re.compile(r"\d")


def _phones(text: str) -> Iterator[PiiMatch]:
    for rule, pattern in _PHONE_RES:
        for match in pattern.finditer(text):
            digits = _DIGIT_RE.findall(match.group())
            # E.164 numbers have at most 15 digits; fewer than 8 (international)
            # or 10 (national) is a local extension, a year or a count.
            low = 8 if rule == "phone_international" else 10
            if low <= len(digits) <= 15 and len(set(digits)) > 2:
                yield PiiMatch("phone", match.start(), match.end(), rule)


# --- payment cards -----------------------------------------------------------

_CARD_RE = re.compile(r"(?<![\w.\-+])\d(?:[ -]?\d){12,18}(?![\w]|[.\-]\d)")
# Issuer prefixes: Visa 4, Mastercard 51-55 and 2221-2720, Amex 34/37,
# Discover 6011/644-649/65, JCB 35, Diners 30/36/38, UnionPay 62, Maestro 50/56-69.
_CARD_PREFIX_RE = re.compile(r"^(?:4|5[0-9]|2[2-7]|3[0478568]|6)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _cards(text: str) -> Iterator[PiiMatch]:
    for match in _CARD_RE.finditer(text):
        raw = match.group()
        digits = re.sub(r"\D", "", raw)
        separators = set(re.findall(r"\D", raw))
        if len(separators) > 1 or not 13 <= len(digits) <= 19:
            continue
        if separators and not _card_grouping(raw):
            continue
        if len(set(digits)) == 1 or not _CARD_PREFIX_RE.match(digits):
            continue
        if luhn_valid(digits):
            yield PiiMatch("card", match.start(), match.end(), "card_luhn")


def _card_grouping(raw: str) -> bool:
    """Printed cards group 4-4-4-4(-3), Amex 4-6-5 and Diners 4-6-4."""
    sizes = [len(group) for group in re.split(r"[ -]", raw)]
    return (all(size == 4 for size in sizes[:-1]) and 1 <= sizes[-1] <= 4) or sizes in ([4, 6, 5], [4, 6, 4])


# --- secrets -----------------------------------------------------------------

_VENDOR_SECRETS = (
    ("aws_access_key", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])")),
    ("openai_key", re.compile(r"(?<![\w-])sk-(?:proj-|svcacct-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}")),
    ("github_token", re.compile(r"(?<!\w)(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("slack_token", re.compile(r"(?<!\w)xox[abposr]-[A-Za-z0-9-]{10,}")),
    ("google_api_key", re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}")),
    ("stripe_key", re.compile(r"(?<!\w)(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}")),
    (
        "jwt",
        re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ),
    (
        "private_key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r".*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.DOTALL,
        ),
    ),
)

_KEYISH = (
    r"api[_-]?key|apikey|secret(?:[_-]?key)?|client[_-]?secret|access[_-]?key(?:[_-]?id)?"
    r"|auth[_-]?token|access[_-]?token|refresh[_-]?token|token|passw(?:or)?d|pwd|private[_-]?key"
    r"|credentials?"
)
_ASSIGNED_SECRET_RE = re.compile(
    r"(?i)(?:\b|_)(?:" + _KEYISH + r")\b[\"']?\s*(?:[:=]|=>|:=)\s*[\"']?(?P<value>[^\s\"'`,;]{8,})"
)
_BEARER_RE = re.compile(r"(?i)\b(?:bearer|token)\s+(?P<value>[A-Za-z0-9_\-.=+/]{20,})")
_PLACEHOLDER_RE = re.compile(
    r"(?i)^(?:<.*>|\{.*\}|\$\{?\w+\}?|x{4,}|\*{4,}|\.{3,}|(?:your|my|the|example|dummy|fake|test|sample)"
    r"[_-]?\w*|\w*(?:here|placeholder|changeme|redacted)\w*|none|null|true|false|os\.environ.*"
    r"|process\.env.*|env\(.*|settings\..*|getenv.*)$"
)


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _looks_random(value: str) -> bool:
    """Mixed letters and digits with ~3.5+ bits/char, like generated keys."""
    has_letter = any(char.isalpha() for char in value)
    has_digit = any(char.isdigit() for char in value)
    return has_letter and has_digit and _entropy(value) >= 3.5


def _looks_like_password(value: str) -> bool:
    """A literal, not code: ``password = request.POST[...]`` or ``= self.pw`` are not secrets."""
    if re.search(r"[()\[\]{}]", value):
        return False
    return any(char.isdigit() for char in value) or re.search(r"[^\w.]", value) is not None


def _secrets(text: str) -> Iterator[PiiMatch]:
    for rule, pattern in _VENDOR_SECRETS:
        for match in pattern.finditer(text):
            yield PiiMatch("secret", match.start(), match.end(), rule)
    for match in _ASSIGNED_SECRET_RE.finditer(text):
        value = match.group("value")
        if _PLACEHOLDER_RE.match(value):
            continue
        # Passwords are short and human-made; anything else must look generated.
        is_password = re.search(r"(?i)passw|pwd", match.group()) is not None
        if (is_password and _looks_like_password(value)) or (len(value) >= 16 and _looks_random(value)):
            yield PiiMatch("secret", match.start("value"), match.end("value"), "assigned_secret")
    for match in _BEARER_RE.finditer(text):
        if _looks_random(match.group("value")):
            yield PiiMatch("secret", match.start("value"), match.end("value"), "bearer_token")


_DETECTORS: dict[str, Callable[[str], Iterator[PiiMatch]]] = {
    "secret": _secrets,
    "card": _cards,
    "email": _emails,
    "phone": _phones,
}


def find_pii(text: str, kinds: Iterable[str] = KINDS) -> list[PiiMatch]:
    """Non-overlapping PII spans in ``text``, in text order.

    Where detections overlap, the more specific kind (secret > card > email
    > phone) wins, then the longer span.
    """
    wanted = list(kinds)
    unknown = set(wanted) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown PII kinds: {', '.join(sorted(unknown))}")
    found = [match for kind in wanted for match in _DETECTORS[kind](text)]
    found.sort(key=lambda m: (_PRIORITY[m.kind], -(m.end - m.start), m.start))
    chosen: list[PiiMatch] = []
    for match in found:
        if all(match.end <= kept.start or match.start >= kept.end for kept in chosen):
            chosen.append(match)
    return sorted(chosen, key=lambda m: m.start)


def redact(text: str, kinds: Iterable[str] = KINDS) -> str:
    """``text`` with each PII span replaced by ``[EMAIL]``, ``[PHONE]``, ``[CARD]`` or ``[SECRET]``."""
    pieces: list[str] = []
    position = 0
    for match in find_pii(text, kinds):
        pieces.append(text[position : match.start])
        pieces.append(_PLACEHOLDERS[match.kind])
        position = match.end
    pieces.append(text[position:])
    return "".join(pieces)
