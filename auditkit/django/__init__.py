"""The Django side of auditkit: an installable app a client adds to ``INSTALLED_APPS``.

``auditkit.django`` (app label ``auditkit``, no models, no migrations) provides:

* ``manage.py auditkit_dump_models`` — writes the model dump (``docs/formats/django-models.md``):
  apps → models → tables, fields → columns, foreign keys, many-to-many through tables and
  declared indexes and constraints, plus each app's latest migration, so that index advice
  and N+1 fixes name the exact model, field and migration;
* :mod:`auditkit.django.naming` — Django's own index naming rules, used to name recommended
  indexes and to recognise the indexes Django creates automatically.

Nothing here is imported by ``import auditkit``; Django is only configured by the client's
project.
"""

from __future__ import annotations
