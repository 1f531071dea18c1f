import gc
import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel.settings")
application = get_wsgi_application()


def _freeze_startup_objects() -> None:
    """Take everything a worker loads at startup out of the garbage collector's sight.

    A web process holds about 150,000 objects once Django, DRF and the apps are imported.
    CPython's full (generation 2) collection walks all of them, and every thread of the worker
    waits on the GIL meanwhile: 94-150 ms each, about every 20-25 s in a busy worker, and those
    pauses were much of the annotation API's p99 (docs/benchmarks.md, session 7).
    Modules, classes and settings live as long as the process, so nothing is lost by not
    scanning them (gc.freeze); a full collection then walks only what requests created since.
    The URLconf (and with it every view module) is imported first, so that it is frozen too
    instead of arriving with the first request.
    """
    import_module(settings.ROOT_URLCONF)  # include() imports each app's urls, and they their views
    gc.collect()  # startup's own garbage is freed, not frozen
    gc.freeze()


_freeze_startup_objects()
