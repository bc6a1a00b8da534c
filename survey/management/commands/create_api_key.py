"""`create_api_key`: issue an `X-API-Key` key for a user (printed once), revoke one, or list them."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from survey.api.keys import KeyAdminError, issue_key, list_keys, revoke_key


class Command(BaseCommand):
    help = (
        "Create an API key for a user and print it once (only its SHA-256 is stored). "
        "Also: --revoke PREFIX, --list."
    )

    def add_arguments(self, parser):
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--user", help="Username the key acts as.")
        action.add_argument("--revoke", metavar="PREFIX", help="Revoke the key whose prefix starts so (see --list).")
        action.add_argument("--list", action="store_true", help="List keys (prefix, name, user, state, last use).")
        parser.add_argument("--name", default="", help="Who or what uses the key, e.g. 'pipeline@proton'.")
        parser.add_argument("--create-user", action="store_true", help="Create the user (without password) if missing.")

    def handle(self, *args, **options):
        try:
            if options["list"]:
                self._list()
            elif options["revoke"]:
                key = revoke_key(options["revoke"])
                self.stdout.write(f"revoked {key.prefix}… ({key.name}, user {key.user.username})")
            else:
                key, raw = issue_key(options["user"], options["name"], create_user=options["create_user"])
                self.stdout.write(raw)
                self.stderr.write(
                    f"key {key.prefix}… '{key.name}' for user {key.user.username}: shown once, store it now "
                    "(send it as the X-API-Key header)."
                )
        except KeyAdminError as exc:
            raise CommandError(str(exc)) from exc

    def _list(self) -> None:
        keys = list(list_keys())
        if not keys:
            self.stdout.write("no API keys")
            return
        self.stdout.write(f"{'prefix':<13} {'state':<8} {'user':<16} {'last used':<20} name")
        for k in keys:
            used = k.last_used_at.strftime("%Y-%m-%d %H:%M") if k.last_used_at else "never"
            state = "revoked" if k.revoked else "active"
            self.stdout.write(f"{k.prefix:<13} {state:<8} {k.user.username:<16} {used:<20} {k.name}")
