"""Survey status routes: /status/, /tiles/ (public) and the survey pages (filled in by the survey-status work)."""
urlpatterns: list = []
