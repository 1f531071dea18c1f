"""Container health checks: the image's HEALTHCHECK and the Kubernetes exec probes.

    healthcheck.py web [--alive]   GET /healthz on this container's PORT
    healthcheck.py worker TIER     the Celery node TIER@<hostname> answers a ping

Beat has no check: it answers nothing, and its container exiting is the failure that matters.

web without --alive (readiness) needs a 200: database and broker reachable. With --alive
(liveness) any HTTP answer will do, even a 503, so an outage of PostgreSQL or Redis does not
make the orchestrator restart every web container at once; only a hung process fails it.

The request names the first ALLOWED_HOSTS entry as its Host: Django answers 400 to any other,
and a probe comes from 127.0.0.1 or the node, never through the real host name.

Exit status 0 is healthy, 1 is not. Only the standard library for web, so a probe every few
seconds costs an interpreter start, not a Django start. The worker check loads the Celery app
(settings, no models, no torch) and asks over the broker, as `celery inspect ping` would.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request


def check_web(*, alive_only: bool) -> int:
    port = os.environ.get("PORT", "8000")
    hosts = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
    host = hosts[0].lstrip(".") if hosts else "localhost"
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310 - our own address
            status = reply.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"web: no answer on port {port}: {exc}")
        return 1
    healthy = status < 500 if alive_only else status == 200
    if not healthy:
        print(f"web: /healthz answered {status}")
    return 0 if healthy else 1


def check_worker(tier: str) -> int:
    # The node name the worker was started with: --hostname TIER@%h, %h being this host name.
    node = f"{tier}@{socket.gethostname()}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel.settings")
    from flywheel.celery import app

    replies = app.control.ping(destination=[node], timeout=float(os.environ.get("PROBE_TIMEOUT", "10")))
    if not replies:
        print(f"worker: {node} did not answer a ping")
        return 1
    return 0


def main(argv: list[str]) -> int:
    # The image's HEALTHCHECK has no arguments: each container says what it is in the
    # environment, e.g. FLYWHEEL_HEALTHCHECK="worker training".
    argv = argv or os.environ.get("FLYWHEEL_HEALTHCHECK", "web").split()
    role = argv[0]
    if role == "web":
        return check_web(alive_only="--alive" in argv)
    if role == "worker" and len(argv) >= 2:
        return check_worker(argv[1])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
