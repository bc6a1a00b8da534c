"""Survey status routes: /status/ and /tiles/ (the only anonymous URLs), the survey pages and their API.

gwportal/urls.py includes this module before `api/`, so the `api/...` routes below cannot be shadowed
by a catch-all of the main API.
"""
from django.urls import path

from survey import status_api, status_views

urlpatterns = [
    path("status/", status_views.public_status, name="public-status"),
    path("tiles/", status_views.public_tiles, name="public-tiles"),
    path("survey/", status_views.survey_page, name="survey"),
    path("survey/tiles/<str:name>/", status_views.tile_page, name="survey-tile"),
    path("survey/nights/<str:night_date>/", status_views.night_page, name="survey-night"),
    path("api/frames/<int:pk>/calibrations/", status_api.frame_calibrations_view, name="api-frame-calibrations"),
    path("api/survey/frames/<int:pk>/calibrations/", status_api.frame_calibrations_view, name="api-survey-frame-calibrations"),
    path("api/survey/calibration-gaps/", status_api.calibration_gaps_view, name="api-calibration-gaps"),
]
