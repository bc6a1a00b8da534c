"""`catalogue_digest`: print a SHA-256 of the catalogue (no ids, no timestamps) and its part sizes."""
import json

from django.core.management.base import BaseCommand

from survey.digest import catalogue_digest


class Command(BaseCommand):
    help = "Print a digest of the catalogue: equal digests mean equal catalogues (e.g. local vs Celery ingest)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print JSON {digest, sizes}.")

    def handle(self, *args, **options):
        digest, sizes = catalogue_digest()
        if options["json"]:
            self.stdout.write(json.dumps({"digest": digest, "sizes": sizes}))
        else:
            self.stdout.write(f"{digest}  " + " ".join(f"{k}={v}" for k, v in sizes.items()))
