"""Input checks shared by every way text enters Flywheel (UI, API, importers)."""

from __future__ import annotations

import unicodedata

from django.conf import settings

from flywheel.errors import InvalidInput

# Newlines and tabs are ordinary text; every other C0/C1 control character (NUL above all)
# breaks PostgreSQL text columns, terminals or tokenizers downstream.
_ALLOWED_CONTROL = {"\n", "\r", "\t"}


def clean_text(value: object, *, field: str, max_chars: int | None = None) -> str:
    """Return the text unchanged if it is acceptable, else raise InvalidInput naming the field."""
    limit = max_chars or settings.FLYWHEEL_MAX_TEXT_CHARS
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, not {type(value).__name__}", field=field)
    if not value.strip():
        raise InvalidInput(f"{field} is empty", field=field)
    if len(value) > limit:
        raise InvalidInput(f"{field} is {len(value):,} characters long; the limit is {limit:,}", field=field)
    for position, char in enumerate(value):
        if char not in _ALLOWED_CONTROL and unicodedata.category(char) == "Cc":
            raise InvalidInput(
                f"{field} contains the control character U+{ord(char):04X} at position {position}; "
                "remove it and try again",
                field=field,
            )
    return value


def clean_optional_text(value: object, *, field: str, max_chars: int) -> str:
    # Whitespace alone in an optional box (a stray newline in the rationale) means "nothing",
    # not "empty, try again": refusing it would cost the annotator the whole judgment.
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    return clean_text(value, field=field, max_chars=max_chars)
