"""Production settings: refuse to start without a secret key; secure cookies and HTTPS."""
import os

from django.core.exceptions import ImproperlyConfigured

if not os.environ.get("GWPORTAL_SECRET_KEY"):
    raise ImproperlyConfigured("GWPORTAL_SECRET_KEY must be set in production (never committed).")

from gwportal.settings import *  # noqa: E402,F401,F403

DEBUG = False
SECRET_KEY = os.environ["GWPORTAL_SECRET_KEY"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("GWPORTAL_SSL_REDIRECT", True)  # noqa: F405
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = int(os.environ.get("GWPORTAL_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
