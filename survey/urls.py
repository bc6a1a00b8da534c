"""Portal pages and the REST API."""
from django.urls import path

from survey import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
