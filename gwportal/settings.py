"""GW Portal settings: every value comes from an environment variable with a safe default.

The default is the embedded set-up (SQLite in ./var, a generated sample archive as data root).
`gwportal.settings_production` tightens this for a real installation.
"""
from __future__ import annotations

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
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True


def _plotly_static() -> list[tuple[str, str]]:
    """plotly.min.js ships inside the plotly package: serve it from there, never from a CDN."""
    try:
        import plotly
    except ImportError:
        return []
    return [("plotly", str(Path(plotly.__file__).parent / "package_data"))]


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
SPECTACULAR_SETTINGS = {"TITLE": "GW Portal API", "VERSION": "3.0.0", "SERVE_INCLUDE_SCHEMA": False}

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

CELERY_BROKER_URL = os.environ.get("GWPORTAL_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = os.environ.get("GWPORTAL_RESULT_BACKEND", "redis://127.0.0.1:6379/1")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

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
