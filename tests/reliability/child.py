"""Run in a child process: an ingest (which may be killed at a crash point), then print a JSON summary.

Usage: python tests/reliability/child.py <data root> [ingest_all_nights args...]
"""
import io
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gwportal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from survey.digest import catalogue_digest
    from survey.models import IngestRun

    if os.environ.get("GWPORTAL_TEST_RUN_AS"):
        # Drop root only now that every module is imported: as root, chmod 000 would not stop a read.
        import pwd

        import encodings.ascii  # noqa: F401 - lazily imported modules must be loaded before
        import encodings.latin_1  # noqa: F401   the interpreter loses access to its own files
        import survey.ingest.report  # noqa: F401
        from datetime import datetime

        datetime.strptime("2025-01-01", "%Y-%m-%d")  # loads _strptime and its locale tables

        user = pwd.getpwnam(os.environ["GWPORTAL_TEST_RUN_AS"])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    out = io.StringIO()
    try:
        call_command("ingest_all_nights", "--data-root", sys.argv[1], "--auto-confirm", "--settle-seconds", "0",
                     *sys.argv[2:], stdout=out, skip_checks=True)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    digest, sizes = catalogue_digest()
    runs = list(IngestRun.objects.order_by("id").values_list("status", flat=True))
    print(json.dumps({"code": code, "digest": digest, "sizes": sizes, "runs": runs}))


if __name__ == "__main__":
    main()
