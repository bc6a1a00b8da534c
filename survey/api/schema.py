"""OpenAPI additions: the `X-API-Key` security scheme and the `{"error": ...}` body of 400/401 answers."""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "survey.api.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-API-Key"}


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="What was wrong, e.g. \"date_start: '2025-13-45' is not a valid ISO date\".")


ERROR_RESPONSES = {400: ErrorSerializer, 401: ErrorSerializer}
