"""The Django app configuration of ``auditkit.django``."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["AuditkitConfig"]


class AuditkitConfig(AppConfig):
    """auditkit's app: the capture recorders (when ``AUDITKIT_CAPTURE`` is set) and the
    ``auditkit_dump_models`` command. No models, no migrations."""

    name = "auditkit.django"
    label = "auditkit"
    verbose_name = "auditkit performance audit"

    def ready(self) -> None:
        from auditkit.django import checks  # noqa: F401  (registers the system checks)
        from auditkit.django.runtime import install_from_settings

        install_from_settings()
