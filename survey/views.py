"""Portal pages (placeholder dashboard until the portal lands)."""
from django.http import HttpRequest, HttpResponse

from survey.models import Frame


def dashboard(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"GW Portal: {Frame.objects.count()} frames")
