"""The portal's pages, one module per area; re-exported so urls.py reads `views.<page>`."""
from survey.views.dashboard import dashboard
from survey.views.frames import frame_detail, frame_download, frame_export, frame_search
from survey.views.nights import night_detail, night_list
from survey.views.problems import problem_list
from survey.views.runs import run_detail, run_list, run_log
from survey.views.targets import target_detail, target_list

__all__ = [
    "dashboard",
    "frame_detail",
    "frame_download",
    "frame_export",
    "frame_search",
    "night_detail",
    "night_list",
    "problem_list",
    "run_detail",
    "run_list",
    "run_log",
    "target_detail",
    "target_list",
]
