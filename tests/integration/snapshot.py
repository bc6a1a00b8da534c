"""The catalogue picture used by tests (lives in survey.digest so operators can use it too)."""
from survey.digest import catalogue_digest, catalogue_snapshot

__all__ = ["catalogue_digest", "catalogue_snapshot"]
