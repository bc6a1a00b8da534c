#!/usr/bin/env bash
# Re-ingest exactly the night folders the latest `check_missing_files` analysis flagged (or the
# --dates/--start-date/--end-date/--unit/--folder given), then re-check them.
# All arguments go to `python manage.py reprocess_nights`; see its --help. No hard-coded dates.
# Exit status is the command's own: 0 consistent now, 1 something still missing/failed, 2 fatal.
set -euo pipefail
cd "$(dirname "$0")"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
status=0
"$PYTHON" manage.py reprocess_nights "$@" || status=$?
if [[ $status -ne 0 ]]; then
    echo "reprocess_missing_folders: FAILED (exit $status); see the output above and logs/" >&2
fi
exit "$status"
