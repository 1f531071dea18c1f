"""Text normalisation shared by dedup, rules and PII detection.

Two forms, on purpose:

* :func:`normalize_text` is for storing and displaying a cleaned copy. It only
  makes invisible changes (NFC, whitespace runs, line endings) and keeps line
  and paragraph breaks, because Markdown answers depend on them.
* :func:`canonical_form` is for hashing only. It throws away everything that
  should not make two texts "different" for deduplication: case, punctuation,
  the exact digits and all layout.

Neither touches the caller's original string; we keep the original text next
to any derived form.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = [
    "canonical_form",
    "canonical_words",
    "exact_hash",
    "normalize_text",
]

# Horizontal whitespace only (NBSP and the Unicode space separators included):
# newlines are structure and are handled separately.
_HSPACE_RE = re.compile(r"[^\S\n]+")
# Invisible characters that copy/paste from web pages leaves behind. ZWJ and
# ZWNJ are not here: emoji sequences and Persian script need them.
_INVISIBLE_RE = re.compile(r"[\u200b\u2060\ufeff]")
_BLANK_LINES_RE = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """Return ``text`` in NFC with whitespace collapsed.

    Runs of spaces/tabs/NBSP become one space, each line is stripped, CR/CRLF
    become LF and three or more newlines become one blank line. Line and
    paragraph breaks survive because they carry meaning in Markdown.
    """
    text = _INVISIBLE_RE.sub("", unicodedata.normalize("NFC", text))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # U+2028/U+2029 are line/paragraph separators that str.splitlines() honours
    # but editors render inconsistently; map them to plain newlines.
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n")
    lines = [_HSPACE_RE.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES_RE.sub("\n\n", "\n".join(lines)).strip()


class _CanonicalTable(dict[int, str]):
    """A ``str.translate`` table filled lazily from Unicode categories.

    Building a table for all 1.1M code points at import costs ~0.7 s; real text
    uses a few hundred distinct characters, so we classify on first sight.
    """

    def __missing__(self, codepoint: int) -> str:
        char = chr(codepoint)
        category = unicodedata.category(char)
        if category == "Nd":
            value = "0"
        elif category[0] in "PSZ" or category in ("Cc", "Cf"):
            # Punctuation, symbols and separators become a space rather than
            # vanishing so that "end.Start" still splits into two words.
            value = " "
        else:
            value = char
        self[codepoint] = value
        return value


_CANONICAL_TABLE = _CanonicalTable()
# The same mapping for ASCII as a 256-byte table. bytes.translate runs at
# memory speed, while str.translate with a dict costs ~150 ns per character
# as soon as a text holds one non-ASCII character. UTF-8 lead and
# continuation bytes are >= 0x80 and pass through untouched.
_ASCII_TABLE = bytes(ord(_CANONICAL_TABLE[byte].lower()) if byte < 0x80 else byte for byte in range(256))


def canonical_words(text: str) -> list[str]:
    """The words of :func:`canonical_form` (an empty list for blank text)."""
    folded = unicodedata.normalize("NFC", text).casefold()
    mapped = folded.encode("utf-8").translate(_ASCII_TABLE).decode("utf-8")
    if not mapped.isascii():
        # Only the distinct non-ASCII characters that change need a pass each;
        # in practice a handful (curly quotes, dashes, NBSP, CJK punctuation).
        for char in set(mapped):
            replacement = _CANONICAL_TABLE[ord(char)]
            if replacement != char:
                mapped = mapped.replace(char, replacement)
    return mapped.split()


def canonical_form(text: str) -> str:
    """Return the form of ``text`` used for hashing and shingling.

    NFC, case-folded (``str.casefold``, a stricter lowercase that also maps
    e.g. "ß" to "ss"), punctuation and symbols replaced by spaces, every
    decimal digit folded to ``0`` and all whitespace collapsed to single spaces.
    """
    return " ".join(canonical_words(text))


def exact_hash(text: str) -> str:
    """Return the SHA-256 hex digest of ``canonical_form(text)``.

    Two texts with the same hash differ at most in case, punctuation, digits
    or layout, which we treat as exact duplicates.
    """
    return hashlib.sha256(canonical_form(text).encode("utf-8")).hexdigest()


def exact_key(digest: str) -> int | None:
    """The first 8 bytes of an ``exact_hash`` digest as a signed 64-bit integer (a BIGINT
    column), or None for no digest: a compact key to group exact duplicates by."""
    if not digest:
        return None
    return int.from_bytes(bytes.fromhex(digest[:16]), "big", signed=True)
