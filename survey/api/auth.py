"""`X-API-Key` authentication: the header the 7DT pipeline's client sends."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from survey.models import ApiKey

LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticate by a key whose SHA-256 is stored; a wrong key is a 401, never anonymous."""

    header = "HTTP_X_API_KEY"

    def authenticate(self, request):
        raw = request.META.get(self.header)
        if not raw:
            return None
        key = ApiKey.objects.select_related("user").filter(key_hash=ApiKey.hash_key(raw.strip()), revoked=False).first()
        if key is None or not key.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            # At most one write a minute per key: a paging client must not turn every GET into a write
            # (on SQLite a write waits for the ingest's write lock).
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key.user, key

    def authenticate_header(self, request) -> str:
        return "X-API-Key"
