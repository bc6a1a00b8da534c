"""`X-API-Key` authentication: the header the 7DT pipeline's client sends."""
from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions

from survey.models import ApiKey


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
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
        return key.user, key

    def authenticate_header(self, request) -> str:
        return "X-API-Key"
