"""Test environment, loaded by `-p flywheel.pytest_plugin` (pyproject.toml) as pytest starts.

A conftest.py is too late for this: pytest-django configures Django in its
pytest_load_initial_conftests hook, before any conftest is imported, so a DJANGO_ENV set
there never reached settings.py and the suite ran on development settings (PBKDF2 hashing,
about a second per test user).
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ENV", "test")
