"""The API's request parsers (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES).

A module of its own: the settings name these classes, and DRF imports them while its views
module is still loading, so they must not import anything that imports DRF's views.
"""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing a body nested too deep to decode as a parse error (400).

    Python's json recurses once per level, so a few kilobytes of "[[[[" raise RecursionError,
    which DRF's parser does not catch: every JSON endpoint answered it with a 500.
    """

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
