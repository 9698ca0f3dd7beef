"""The Django app configuration of ``auditkit.django``."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["AuditkitConfig"]


class AuditkitConfig(AppConfig):
    """auditkit's helper app: management commands only (no models, no migrations)."""

    name = "auditkit.django"
    label = "auditkit"
    verbose_name = "auditkit performance audit"
