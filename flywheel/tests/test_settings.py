"""Settings are parsed strictly: a bad environment stops the process and names the variable.

Settings are read once per process, so each case starts a fresh Python in a subprocess with
exactly the environment under test.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

# Everything settings.py reads, so the parent's environment (DJANGO_ENV=test, the developer's
# own DATABASE_URL, ...) cannot leak into a case.
SETTINGS_VARIABLES = (
    "DJANGO_ENV",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "REDIS_URL",
    "FLYWHEEL_DATA_DIR",
    "FLYWHEEL_MAX_TEXT_CHARS",
    "FLYWHEEL_DEMO",
    "STATIC_ROOT",
    "LOG_LEVEL",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "BEHIND_TLS_PROXY",
    "CELERY_VISIBILITY_TIMEOUT",
    "FLYWHEEL_POLICY_SERVING",
    "FLYWHEEL_VLLM_URL",
    "FLYWHEEL_METRICS_TOKEN",
)
SETUP = ("-c", "import django; django.setup()")


def run(tmp_path: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    clean["DJANGO_SETTINGS_MODULE"] = "flywheel.settings"
    # Embedded mode writes its SQLite file and broker folders here, never in the checkout.
    clean["FLYWHEEL_DATA_DIR"] = str(tmp_path)
    clean.update(env)
    return subprocess.run(
        [sys.executable, *argv],
        cwd=settings.BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    """The last line of the traceback: the ImproperlyConfigured message."""
    assert result.returncode != 0, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: "), result.stderr[-2000:]
    return last


def production_env() -> dict[str, str]:
    return {
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "flywheel.example.com",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://flywheel@127.0.0.1:5432/flywheel"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    }


def test_it_starts_with_nothing_set(tmp_path):
    # The control for every refusal below: the same command succeeds on a clean environment.
    result = run(tmp_path, {}, *SETUP)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("FLYWHEEL_MAX_TEXT_CHARS", "abc"),
        ("FLYWHEEL_MAX_TEXT_CHARS", "5"),
        ("DATABASE_URL", "mysql://x"),
        ("DATABASE_URL", "postgres://db.example.com"),
        ("DATABASE_URL", "postgres://db.example.com:port/flywheel"),
        ("REDIS_URL", "http://x"),
        ("DJANGO_ENV", "staging"),
        ("LOG_LEVEL", "loud"),
        ("FLYWHEEL_DEMO", "sure"),
        ("FLYWHEEL_POLICY_SERVING", "vllm"),
        # External serving with nowhere to send requests.
        ("FLYWHEEL_POLICY_SERVING", "external"),
        ("FLYWHEEL_VLLM_URL", "vllm.internal:8000"),
        ("FLYWHEEL_VLLM_URL", "http://vllm.internal:port"),
        ("FLYWHEEL_VLLM_URL", "http://vllm.internal:8000/?model=x"),
        ("FLYWHEEL_METRICS_TOKEN", "too-short-to-guard"),
    ],
)
def test_it_refuses_a_bad_value_naming_the_variable(tmp_path, name, value):
    message = refusal(run(tmp_path, {name: value}, *SETUP))
    assert f"{name}=" in message


def test_it_refuses_a_bad_value_in_manage_py_too(tmp_path):
    message = refusal(run(tmp_path, {"DEBUG": "maybe"}, "manage.py", "check"))
    assert "DEBUG='maybe'" in message


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"DEBUG": "1"}, "DEBUG"),
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "dev-insecure-flywheel-secret-key-do-not-use-in-production"}, "SECRET_KEY"),
        ({"SECRET_KEY": "short-but-random-8fz2"}, "SECRET_KEY"),
        ({"SECRET_KEY": "a" * 60}, "SECRET_KEY"),
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS"),
        ({"ALLOWED_HOSTS": "flywheel.example.com,*"}, "ALLOWED_HOSTS"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
    ],
    ids=[
        "debug-on",
        "secret-empty",
        "secret-default",
        "secret-short",
        "secret-not-random",
        "hosts-wildcard",
        "hosts-with-wildcard",
        "hosts-empty",
    ],
)
def test_it_refuses_an_unsafe_production(tmp_path, change, variable):
    message = refusal(run(tmp_path, production_env() | change, *SETUP))
    assert variable in message


def test_it_refuses_production_without_a_secret_key_at_all(tmp_path):
    env = production_env()
    del env["SECRET_KEY"]
    assert "SECRET_KEY" in refusal(run(tmp_path, env, *SETUP))


def test_it_passes_the_deploy_checks_in_a_good_production(tmp_path):
    result = run(tmp_path, production_env(), "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stdout + result.stderr
