from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from flywheel.models import Role


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness: the database answers a query, and the broker is reachable."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    from workers.health import broker_status

    checks["broker"] = broker_status()
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503
    )


# Addresses Prometheus scrapes from inside a cluster or a private network. Spelled out because
# ipaddress's is_private also counts the documentation ranges, which are public in tests.
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7")
)
# Any of these means a proxy (an ingress, a load balancer) passed the request on, and then
# REMOTE_ADDR is the proxy's private address, not the caller's.
_FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _from_private_network(request: HttpRequest) -> bool:
    if any(header in request.META for header in _FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _PRIVATE_NETWORKS)


def _bearer_token_matches(request: HttpRequest) -> bool:
    expected = settings.FLYWHEEL_METRICS_TOKEN
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), expected)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics: open to the private network, to a bearer token and to signed-in admins."""
    allowed = (
        _from_private_network(request)
        or _bearer_token_matches(request)
        or getattr(request.user, "role", None) == Role.ADMIN
    )
    if not allowed:
        if request.user.is_authenticated:
            return HttpResponse("Metrics need the admin role.\n", status=403, content_type="text/plain")
        response = HttpResponse("Metrics need a bearer token.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    from flywheel.metrics import render

    body, content_type = render()
    return HttpResponse(body, content_type=content_type)
