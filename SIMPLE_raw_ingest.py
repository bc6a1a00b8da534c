#!/usr/bin/env python
"""Ingest one night: `python SIMPLE_raw_ingest.py --date YYYY-MM-DD [ingest_all_nights options]`.

Kept from the original GW Portal as a thin caller of `manage.py ingest_all_nights`.
"""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gwportal.settings")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import django
    from django.core.management import call_command

    django.setup()
    args = sys.argv[1:]
    # The original's negative flags: the new engine always creates targets and applies exclusion rules.
    args = [a for a in args if a not in {"--no-create-targets", "--no-exclude-focus", "--no-exclude-test"}]
    if "--limit" in args:
        i = args.index("--limit")
        del args[i : i + 2]
    call_command("ingest_all_nights", *args)


if __name__ == "__main__":
    main()
