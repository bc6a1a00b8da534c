"""`ensure_admin`: create the embedded set-up's `admin` user once, with a random password in var/."""
from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create user 'admin' with a random password stored in var/admin-password (embedded set-up only)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, **options):
        users = get_user_model()
        path = settings.VAR_DIR / "admin-password"
        if users.objects.filter(username=options["username"]).exists():
            self.stdout.write(f"user {options['username']} exists")
            return
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser(options["username"], "", password)
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(password + "\n")
        path.chmod(0o600)
        self.stdout.write(f"created user {options['username']}; password in {path}")
