"""Other people's data formats, as plain functions: no Django, no database.

Each module reads lines with `parse_*` generators that yield (line_number, record) or
(line_number, LineError), one bad line never stopping the rest, and writes with `dump_*`
generators that yield JSON Lines. The records in `common` are the only thing the Django side
(interop/services.py, interop/selectors.py) sees of a format.
"""
