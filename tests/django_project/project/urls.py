"""No views: the test project only runs management commands."""

from __future__ import annotations

urlpatterns: list[object] = []
