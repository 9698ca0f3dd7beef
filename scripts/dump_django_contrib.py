"""Write auditkit/analysis/django_contrib.json: the model dump of Django's own apps.

Django creates tables of its own (``auth_user``, ``django_session``, …) in every project. When
a client sends no model dump, auditkit still knows those tables exactly — their primary keys,
unique constraints, relations and the indexes Django creates — from this file, which is the
``auditkit_dump_models`` output of a project holding only ``django.contrib`` apps. Regenerate
it after a Django upgrade::

    python scripts/dump_django_contrib.py

It reads no database (on PostgreSQL the dump needs no connection).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "auditkit" / "analysis" / "django_contrib.json"
APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.sites",
    "django.contrib.flatpages",
    "django.contrib.redirects",
    "django.contrib.messages",
]


def main() -> None:
    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=APPS,
        DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "contrib"}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=True,
    )
    django.setup()
    sys.path.insert(0, str(ROOT))
    from auditkit.django.model_dump import dump_models

    data = dump_models()
    data.pop("generated_at", None)
    TARGET.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)} (Django {data['django_version']})")


if __name__ == "__main__":
    main()
