"""The WSGI entry point that gunicorn (and every deploy manifest) loads."""

from __future__ import annotations

from flywheel.tests.test_settings import run

# What a worker holds once flywheel.wsgi is imported: the views (loaded with the URLconf, not
# with the first request), and how many objects the garbage collector has been told to skip.
PROBE = """
import gc, sys
import flywheel.wsgi
gc.collect()
print(gc.get_freeze_count(), len(gc.get_objects()))
print('feedback.api' in sys.modules, 'console.views' in sys.modules)
"""


def test_startup_objects_are_loaded_and_frozen(tmp_path):
    # A full collection walks every tracked object; the ones loaded at startup are frozen so
    # that it does not stall the worker's threads (see flywheel/wsgi.py).
    result = run(tmp_path, {}, "-c", PROBE)
    assert result.returncode == 0, result.stderr
    frozen, tracked, api_loaded, console_loaded = result.stdout.split()
    assert api_loaded == console_loaded == "True"
    assert int(frozen) > 50_000
    assert int(tracked) < int(frozen) / 10
