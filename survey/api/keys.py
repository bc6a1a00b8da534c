"""API key administration (the `create_api_key` command is a thin caller): issue, revoke, list.

Only the SHA-256 of a key is stored; the raw key is returned by `issue_key` once and never again.
"""
from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from survey.models import ApiKey

log = logging.getLogger(__name__)
MIN_REVOKE_PREFIX = 8  # "gwp_" + 4 random characters: never revoke by a prefix every key shares


class KeyAdminError(Exception):
    """A key operation that cannot be done (unknown user, ambiguous prefix, ...)."""


def issue_key(username: str, name: str, *, create_user: bool = False) -> tuple[ApiKey, str]:
    """Create a key for `username`; returns (key, raw key). `create_user` makes a password-less user."""
    if not name.strip():
        raise KeyAdminError("a key needs a --name saying who or what uses it (e.g. 'pipeline@proton')")
    users = get_user_model()
    user = users.objects.filter(username=username).first()
    if user is None:
        if not create_user:
            raise KeyAdminError(f"no user {username!r} (create it, or pass --create-user)")
        user = users.objects.create_user(username=username)
        user.set_unusable_password()
        user.save(update_fields=["password"])
        log.info("created user %s (no password: API key only)", username)
    if not user.is_active:
        raise KeyAdminError(f"user {username!r} is inactive: its keys would be refused")
    key, raw = ApiKey.issue(user, name.strip())
    log.info("issued API key %s… (%s) for %s", key.prefix, key.name, username)
    return key, raw


def revoke_key(prefix: str) -> ApiKey:
    """Revoke the one active key whose stored prefix starts with `prefix`."""
    prefix = prefix.strip()
    if len(prefix) < MIN_REVOKE_PREFIX:
        raise KeyAdminError(f"give at least {MIN_REVOKE_PREFIX} characters of the key prefix (see --list)")
    matches = list(ApiKey.objects.filter(prefix__startswith=prefix[:12], revoked=False).select_related("user"))
    matches = [k for k in matches if k.prefix.startswith(prefix[:12])]
    if not matches:
        raise KeyAdminError(f"no active key with prefix {prefix!r}")
    if len(matches) > 1:
        names = ", ".join(f"{k.prefix} ({k.name})" for k in matches)
        raise KeyAdminError(f"prefix {prefix!r} matches {len(matches)} keys: {names}; give more characters")
    key = matches[0]
    key.revoked = True
    key.save(update_fields=["revoked"])
    log.info("revoked API key %s… (%s)", key.prefix, key.name)
    return key


def list_keys() -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("user").order_by("user__username", "created_at", "id")
