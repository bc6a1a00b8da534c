"""GW Portal settings: every value comes from an environment variable with a safe default.

The default is the embedded set-up (SQLite in ./var, a generated sample archive as data root).
`gwportal.settings_production` tightens this for a real installation.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("GWPORTAL_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("GWPORTAL_DEBUG", False)
# A development key is generated per checkout; production refuses to start without GWPORTAL_SECRET_KEY.
SECRET_KEY = os.environ.get("GWPORTAL_SECRET_KEY", "")
if not SECRET_KEY:
    _key_file = VAR_DIR / "dev-secret-key"
    if not _key_file.exists():
        import secrets

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        _key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = env_list("GWPORTAL_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("GWPORTAL_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / Redoc assets served locally, no CDN
    "survey",
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
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
]

ROOT_URLCONF = "gwportal.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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
WSGI_APPLICATION = "gwportal.wsgi.application"

_default_db = f"sqlite:///{VAR_DIR / 'gwportal.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", _default_db), conn_max_age=60)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"].setdefault("TEST", {})
if os.environ.get("GWPORTAL_TEST_DB_NAME"):
    DATABASES["default"]["TEST"]["NAME"] = os.environ["GWPORTAL_TEST_DB_NAME"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing directory
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True


def _plotly_static() -> list[tuple[str, str]]:
    """plotly.min.js ships inside the plotly package: serve it from there, never from a CDN.

    Found, not imported: importing plotly costs every process start (each ingest, each command) ~30 ms."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:  # not installed (or a stray namespace folder)
        return []
    data = Path(spec.origin).parent / "package_data"
    return [("plotly", str(data))] if (data / "plotly.min.js").is_file() else []


STATICFILES_DIRS = _plotly_static()
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "survey.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "survey.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "survey.api.pagination.PortalPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "GW Portal API",
    "DESCRIPTION": "Read-only API of the 7DT raw-frame archive (see docs/api.md). "
    "Authenticate with an `X-API-Key` header, `Authorization: Token ...`, or a portal session.",
    "VERSION": "3.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/",
    # The schema and its UI need a login or a key like every other URL (SPEC section 3).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- GW Portal itself -------------------------------------------------------------------------
GWPORTAL = {
    # Where unit folders 7DT01..7DT20 live. Empty: the run script generates a sample archive.
    "DATA_ROOT": os.environ.get("GWPORTAL_DATA_ROOT", ""),
    "LOG_DIR": os.environ.get("GWPORTAL_LOG_DIR", str(BASE_DIR / "logs")),
    # --new-data-only keeps nights after this date (the original's bulk-import cutoff).
    "NEW_DATA_CUTOFF": os.environ.get("GWPORTAL_NEW_DATA_CUTOFF", "2025-06-29"),
    "INGEST_WORKERS": int(os.environ.get("GWPORTAL_INGEST_WORKERS", "0")),  # 0 = number of cores
    "PARALLEL_THRESHOLD": int(os.environ.get("GWPORTAL_PARALLEL_THRESHOLD", "2000")),
    "READ_CONCURRENCY": int(os.environ.get("GWPORTAL_READ_CONCURRENCY", "1")),  # threads per worker
    "BATCH_SIZE": int(os.environ.get("GWPORTAL_BATCH_SIZE", "2000")),
    "VERIFY_CHECKSUMS": env_bool("GWPORTAL_VERIFY_CHECKSUMS", True),
    "EXECUTOR": os.environ.get("GWPORTAL_EXECUTOR", "local"),  # local | celery
    "EXCLUDE_FOCUS": env_list("GWPORTAL_EXCLUDE_FOCUS", ""),  # extra substrings; defaults in rawdata
    "EXCLUDE_TEST": env_list("GWPORTAL_EXCLUDE_TEST", ""),
    "POINTING_TOLERANCE_DEG": float(os.environ.get("GWPORTAL_POINTING_TOLERANCE_DEG", "1.0")),
    "PUBLIC_STATUS": env_bool("GWPORTAL_PUBLIC_STATUS", True),
    "ONLINE_NIGHTS": int(os.environ.get("GWPORTAL_ONLINE_NIGHTS", "30")),
}

# --- Celery: scale-out readers and the beat-driven monitor (docs/scale-out.md) -----------------
# Used only with `--executor celery` / GWPORTAL_EXECUTOR=celery and by Celery beat; the embedded
# default never contacts a broker. Broker: Redis (default) or RabbitMQ (amqp://user:pw@host:5672//).
CELERY_BROKER_URL = os.environ.get("GWPORTAL_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = os.environ.get("GWPORTAL_RESULT_BACKEND", "redis://127.0.0.1:6379/1")
# A chunk is acknowledged only after it was read; a worker that dies mid-chunk gives it back.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# JSON only, never pickle: a broker message must not be able to execute code on the host reading it.
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
# Header records shrink ~5x; only the Redis result backend stores compressed results.
CELERY_RESULT_COMPRESSION = os.environ.get(
    "GWPORTAL_RESULT_COMPRESSION", "gzip" if CELERY_RESULT_BACKEND.startswith("redis") else ""
) or None
CELERY_RESULT_EXPIRES = 24 * 3600  # results no coordinator collected (it died) vanish after a day
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("GWPORTAL_CELERY_QUEUE", "gwportal")
CELERY_TASK_ROUTES = {
    "survey.tasks.read_chunk_task": {"queue": os.environ.get("GWPORTAL_INGEST_QUEUE", "gwportal.ingest")},
    "survey.tasks.monitor_cycle_task": {"queue": os.environ.get("GWPORTAL_MONITOR_QUEUE", "gwportal.monitor")},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis only (RabbitMQ redelivers at once when a consumer's connection drops): a chunk taken by a
    # worker that died unannounced goes back to the queue after this many seconds. Must exceed the
    # longest chunk read, or a slow chunk is read twice (harmless: results are keyed by task id).
    "visibility_timeout": int(os.environ.get("GWPORTAL_BROKER_VISIBILITY_TIMEOUT", "3600")),
    "unacked_restore_interval": int(os.environ.get("GWPORTAL_BROKER_RESTORE_INTERVAL", "10")),
    "unacked_restore_throttle": int(os.environ.get("GWPORTAL_BROKER_RESTORE_THROTTLE", "6")),
}
if os.environ.get("GWPORTAL_BROKER_KEYPREFIX"):  # several installations (or test runs) sharing one Redis
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = os.environ["GWPORTAL_BROKER_KEYPREFIX"]
# Celery beat runs one monitor cycle per period (under the monitor's database lease, so never two
# at once and never beside a running `update_nights` daemon). 0 disables the schedule.
_MONITOR_BEAT_S = float(os.environ.get("GWPORTAL_MONITOR_BEAT_SECONDS", "300"))
CELERY_BEAT_SCHEDULE = {
    "monitor-cycle": {
        "task": "survey.tasks.monitor_cycle_task",
        "schedule": _MONITOR_BEAT_S,
        "options": {"expires": _MONITOR_BEAT_S},  # no pile-up of cycles while no worker consumes them
    },
} if _MONITOR_BEAT_S > 0 else {}

# How the ingest coordinator uses Celery (survey/ingest/celery_executor.py).
GWPORTAL_CELERY = {
    "INGEST_QUEUE": CELERY_TASK_ROUTES["survey.tasks.read_chunk_task"]["queue"],
    # Chunks in flight at once: 0 = 2 x the reader processes of the live workers (or of --workers).
    "MAX_IN_FLIGHT": int(os.environ.get("GWPORTAL_CELERY_MAX_IN_FLIGHT", "0")),
    # Longest wait for one chunk's result while workers are alive; 0 = visibility timeout + 10 min
    # (a chunk of a worker that died is redelivered after the visibility timeout).
    "WAIT_TIMEOUT": float(os.environ.get("GWPORTAL_CELERY_WAIT_TIMEOUT", "0")),
    # Give up when no worker consumes the ingest queue for this long (the run fails, exit code 2).
    "NO_WORKER_TIMEOUT": float(os.environ.get("GWPORTAL_CELERY_NO_WORKER_TIMEOUT", "120")),
    # Seconds one worker broadcast (liveness check) waits for replies.
    "INSPECT_TIMEOUT": float(os.environ.get("GWPORTAL_CELERY_INSPECT_TIMEOUT", "1.0")),
    # A chunk that no live worker holds although the queue moved past it (its worker died) is sent
    # again after two such checks this many seconds apart, at most MAX_RESUBMITS times.
    "LOST_CHECK": float(os.environ.get("GWPORTAL_CELERY_LOST_CHECK", "10")),
    "MAX_RESUBMITS": int(os.environ.get("GWPORTAL_CELERY_MAX_RESUBMITS", "3")),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("GWPORTAL_LOG_LEVEL", "WARNING")},
    "loggers": {
        "gwportal": {"level": os.environ.get("GWPORTAL_LOG_LEVEL", "INFO"), "propagate": True},
        "survey": {"level": os.environ.get("GWPORTAL_LOG_LEVEL", "INFO"), "propagate": True},
    },
}
