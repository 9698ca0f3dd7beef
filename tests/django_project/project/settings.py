"""Settings of the test project, all from the environment.

* ``AUDITKIT_TEST_PG_DSN`` — server to use (default ``postgresql://postgres@127.0.0.1:5432/postgres``);
  only host, port, user and password are taken from it;
* ``AUDITKIT_DJANGO_DB`` — the database name (tests create a uniquely named one and drop it);
* ``AUDITKIT_DJANGO_QUERY_LOG`` — when set, DEBUG is on and ``django.db.backends`` logs every
  statement to this file (the Django query log auditkit reads).
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

_dsn = urlparse(
    os.environ.get("AUDITKIT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
)
QUERY_LOG = os.environ.get("AUDITKIT_DJANGO_QUERY_LOG")

SECRET_KEY = "auditkit-test-project-not-secret"
DEBUG = bool(QUERY_LOG)
ALLOWED_HOSTS: list[str] = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "auditkit.django",
    "shop",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("AUDITKIT_DJANGO_DB", "auditkit_django"),
        "USER": unquote(_dsn.username or "postgres"),
        "PASSWORD": unquote(_dsn.password or ""),
        "HOST": _dsn.hostname or "127.0.0.1",
        "PORT": str(_dsn.port or 5432),
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "[%(asctime)s] %(levelname)s: %(message)s"}},
    "handlers": (
        {"queries": {"class": "logging.FileHandler", "filename": QUERY_LOG, "formatter": "plain"}}
        if QUERY_LOG
        else {}
    ),
    "loggers": (
        {"django.db.backends": {"handlers": ["queries"], "level": "DEBUG", "propagate": False}}
        if QUERY_LOG
        else {}
    ),
}
