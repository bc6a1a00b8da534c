"""Portal routes (login required everywhere: LoginRequiredMiddleware). Survey-status routes live in status_urls.py."""
from django.urls import path

from survey import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("nights/", views.night_list, name="night-list"),
    path("nights/<str:night_date>/", views.night_detail, name="night-detail"),  # a bad date is a 404 from the view
    path("frames/", views.frame_search, name="frame-search"),
    path("frames/export.csv", views.frame_export, name="frame-export"),
    path("frames/<int:pk>/", views.frame_detail, name="frame-detail"),
    path("frames/<int:pk>/download", views.frame_download, name="frame-download"),
    path("targets/", views.target_list, name="target-list"),
    path("targets/<path:name>/", views.target_detail, name="target-detail"),
    path("runs/", views.run_list, name="run-list"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/log", views.run_log, name="run-log"),
    path("problems/", views.problem_list, name="problem-list"),
]
