#!/usr/bin/env python
"""Compare the database with the data root: `python CHECK_missing_files.py [check_missing_files options]`.

Kept from the original GW Portal as a thin caller of `manage.py check_missing_files` (same options,
same exit codes: 0 clean, 1 differences found, 2 fatal error).
"""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gwportal.settings")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from django.core.management import execute_from_command_line

    execute_from_command_line([sys.argv[0], "check_missing_files", *sys.argv[1:]])


if __name__ == "__main__":
    main()
