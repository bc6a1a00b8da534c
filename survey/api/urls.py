"""REST API routes, mounted at /api/.

Every API view is exempt from Django's LoginRequiredMiddleware so that DRF itself answers: a missing or
wrong key is a 401 `{"error": ...}` with a `WWW-Authenticate` header, never a 302 to the login page that
a script cannot follow. The views still require an API key, a token or a session (DRF permissions).
The Swagger/Redoc pages are for people: those keep the login redirect.
"""
from django.contrib.auth.decorators import login_not_required
from django.urls import path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from survey.api import views

router = DefaultRouter()
router.include_format_suffixes = False  # `?format=json` is enough; `/api/frames.json` routes only add noise
router.register("frames", views.FrameViewSet, basename="api-frame")
router.register("nights", views.NightViewSet, basename="api-night")
router.register("runs", views.IngestRunViewSet, basename="api-run")
router.register("problems", views.FileProblemViewSet, basename="api-problem")
router.register("stats", views.NightUnitStatsViewSet, basename="api-stats")
router.register("folders", views.NightFolderViewSet, basename="api-folder")

OUT_OF_SCOPE = [
    "frames/processed/", "frames/combined/", "frames/processed_too/", "frames/combined_too/",
    "master/bias/", "master/dark/", "master/flat/",
]  # fmt: skip

api_patterns = [
    # The pipeline contract first: `frames/raw/` must win over the router's `frames/<id>/`.
    path("frames/raw/", views.RawFrameList.as_view(), name="api-frames-raw"),
    *[
        path(route, views.OutOfScopeList.as_view(), name="api-" + route.strip("/").replace("/", "-"))
        for route in OUT_OF_SCOPE
    ],
    path("tiles/", views.TileList.as_view(), name="api-tiles"),
    path("targets/", views.TargetList.as_view(), name="api-targets"),
    path("schema/", views.SchemaView.as_view(), name="api-schema"),
    *router.urls,
]
for pattern in api_patterns:
    login_not_required(pattern.callback)  # DRF >= 3.15.2 does this too; explicit, so it never depends on that


def _login_page(view):
    """DRF marks its views login-exempt; these HTML pages are for people, so send anonymous ones to log in."""
    view.login_required = True
    return view


urlpatterns = [
    *api_patterns,
    path("docs/", _login_page(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
    path("redoc/", _login_page(SpectacularRedocView.as_view(url_name="api-schema")), name="api-redoc"),
]
