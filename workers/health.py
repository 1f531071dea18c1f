from __future__ import annotations

from pathlib import Path

from django.conf import settings


def broker_status() -> str:
    if settings.REDIS_URL:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()
        except redis.RedisError as exc:
            return f"error: {type(exc).__name__}"
        return "ok"
    folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in")
    return "ok" if isinstance(folder, str) and Path(folder).is_dir() else "error: broker folder missing"
