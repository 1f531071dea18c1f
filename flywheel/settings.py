"""Flywheel settings: one strict file, driven by environment variables.

With nothing set, Flywheel runs embedded: SQLite and a filesystem Celery broker under
FLYWHEEL_DATA_DIR, so `make run` needs no services. Set DATABASE_URL and REDIS_URL to run
on PostgreSQL and Redis (CI and production).
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from flywheel.env import (
    check_http_url,
    check_redis_url,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_path,
    env_str,
    parse_database_url,
    sqlite_database,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Environment -----------------------------------------------------------------------------
ENVIRONMENT = env_choice("DJANGO_ENV", "development", ("development", "test", "production"))
PRODUCTION = ENVIRONMENT == "production"
TESTING = ENVIRONMENT == "test"

DATA_DIR = env_path("FLYWHEEL_DATA_DIR", BASE_DIR / ".flywheel")
MODEL_STORE = DATA_DIR / "models"
EXPORT_DIR = DATA_DIR / "exports"
LOG_DIR = DATA_DIR / "logs"

# --- Security --------------------------------------------------------------------------------
_DEV_SECRET = "dev-insecure-flywheel-secret-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET)
DEBUG = env_bool("DEBUG", not PRODUCTION and not TESTING)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

if PRODUCTION:
    # Refuse to start rather than run an insecure production: these are the mistakes that
    # leak data, and they are cheap to catch here.
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production")
    if SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a random value of at least 50 characters when DJANGO_ENV=production"
        )
    if not ALLOWED_HOSTS or any(h == "*" or h.startswith("*") for h in ALLOWED_HOSTS):
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS must list the real host names (no wildcard) when DJANGO_ENV=production"
        )
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env_bool("BEHIND_TLS_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # The health check is probed over plain HTTP from inside the cluster.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Applications ----------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_beat",
    "flywheel",
    "feedback",
    "curation",
    "training",
    "workers",
    "interop",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "flywheel.urls"
WSGI_APPLICATION = "flywheel.wsgi.application"
AUTH_USER_MODEL = "flywheel.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "flywheel" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------
_database_url = env_str("DATABASE_URL", "")
DATABASES = {
    "default": parse_database_url("DATABASE_URL", _database_url)
    if _database_url
    else sqlite_database(DATA_DIR / "db.sqlite3")
}
if not _database_url:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
USING_POSTGRES = DATABASES["default"]["ENGINE"] == "flywheel.postgres"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery ----------------------------------------------------------------------------------
REDIS_URL = check_redis_url("REDIS_URL", env_str("REDIS_URL", "")) if env_str("REDIS_URL", "") else ""
# The test suite queues real messages; under the embedded broker they must not land in the
# queue `make run`'s workers read from the same data dir.
BROKER_DIR = DATA_DIR / ("broker-test" if TESTING else "broker")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    # How long a task a worker took but never acknowledged (it died) waits before another
    # worker gets it. Longer than the longest task, or a slow task runs twice.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)
    }
else:
    # kombu's filesystem transport: every process sharing FLYWHEEL_DATA_DIR shares the
    # queue, and nothing needs a server. Its folders must exist before anyone publishes.
    for _folder in ("queue", "processed", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    RESULTS_DIR = DATA_DIR / ("results-test" if TESTING else "results")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Broadcast (control) messages; kombu would otherwise write them into the cwd.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{RESULTS_DIR}"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Celery replaces the root logger's handlers with its own plain format unless told not to; in
# production the workers then log through LOGGING below, as JSON like the web process.
CELERY_WORKER_HIJACK_ROOT_LOGGER = not PRODUCTION

# --- Caches ----------------------------------------------------------------------------------
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# --- Auth and passwords ----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Fast hashing keeps the suite quick; never used outside tests.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# --- API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "flywheel.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "flywheel.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "flywheel.api.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "flywheel.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Flywheel API",
    "DESCRIPTION": "Collect, curate, retrain, gate and redeploy: the Flywheel REST API.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # `check --deploy` then also proves the schema generates without warnings.
    "ENABLE_DJANGO_DEPLOY_CHECK": True,
}

# --- Internationalisation and static files ---------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# collectstatic target; only production needs it, and WhiteNoise warns when it is set but
# absent, so development leaves it unset and serves straight from the app folders.
STATIC_ROOT = (
    env_path("STATIC_ROOT", DATA_DIR / "static") if PRODUCTION or env_str("STATIC_ROOT", "") else None
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Outside production, serve straight from the app folders so no collectstatic is needed.
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Flywheel --------------------------------------------------------------------------------
FLYWHEEL_MAX_TEXT_CHARS = env_int("FLYWHEEL_MAX_TEXT_CHARS", 32_000, minimum=100)
FLYWHEEL_DEMO = env_bool("FLYWHEEL_DEMO", False)
# The annotation hot path prepares its statements on PostgreSQL (flywheel/db.py). Turn it off
# behind a transaction-pooling PgBouncer older than 1.21, which cannot keep them.
FLYWHEEL_PREPARED_STATEMENTS = env_bool("FLYWHEEL_PREPARED_STATEMENTS", True)
# On PostgreSQL each connection keeps the API tokens it has checked, and LISTENs for the
# notification a trigger sends when a user or token changes (flywheel/postgres/base.py). Turn it
# off behind a transaction-pooling PgBouncer, which does not pass notifications on.
FLYWHEEL_TOKEN_CACHE = env_bool("FLYWHEEL_TOKEN_CACHE", True)
# How long the API waits for the inference worker before answering 503.
FLYWHEEL_INFERENCE_TIMEOUT = env_int("FLYWHEEL_INFERENCE_TIMEOUT", 60, minimum=1)
# Where the deployed policy generates: in the inference worker's own process (torch), or on an
# OpenAI-compatible server such as vLLM (deploy/serving/README.md). The reward model stays in process.
FLYWHEEL_POLICY_SERVING = env_choice("FLYWHEEL_POLICY_SERVING", "inprocess", ("inprocess", "external"))
FLYWHEEL_VLLM_URL = (
    check_http_url("FLYWHEEL_VLLM_URL", env_str("FLYWHEEL_VLLM_URL", ""))
    if env_str("FLYWHEEL_VLLM_URL", "")
    else ""
)
if FLYWHEEL_POLICY_SERVING == "external" and not FLYWHEEL_VLLM_URL:
    raise ImproperlyConfigured("FLYWHEEL_VLLM_URL must be set when FLYWHEEL_POLICY_SERVING=external")
# A bearer token that lets Prometheus scrape /metrics from outside the private network. Short
# tokens are refused: this one guards the endpoint on its own.
FLYWHEEL_METRICS_TOKEN = env_str("FLYWHEEL_METRICS_TOKEN", "")
if FLYWHEEL_METRICS_TOKEN and len(FLYWHEEL_METRICS_TOKEN) < 32:
    raise ImproperlyConfigured(
        f"FLYWHEEL_METRICS_TOKEN=<{len(FLYWHEEL_METRICS_TOKEN)} characters> is shorter than 32 characters"
    )

# --- Logging ---------------------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "flywheel.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": sys.stderr,
            "formatter": "json" if PRODUCTION else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # The embedded filesystem broker has no host name, which kombu warns about on every
        # connection; with Redis that warning would matter, so it is only quietened here.
        "kombu.connection": {"level": "INFO" if REDIS_URL else "ERROR"},
    },
}
