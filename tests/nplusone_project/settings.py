"""Settings of the N+1 test project: PostgreSQL from AUDITKIT_NPLUSONE_DSN, queries logged."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

_dsn = urlsplit(os.environ.get("AUDITKIT_NPLUSONE_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"))
LOG_DIR = os.environ.get("AUDITKIT_NPLUSONE_LOGS", ".")

SECRET_KEY = "test-only-not-secret"
DEBUG = True  # django.db.backends logs statements only when DEBUG is on
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
ROOT_URLCONF = "urls"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "shop"]
MIDDLEWARE = ["shop.middleware.RequestIdMiddleware"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _dsn.path.lstrip("/"),
        "USER": _dsn.username or "postgres",
        "PASSWORD": _dsn.password or "",
        "HOST": _dsn.hostname or "127.0.0.1",
        "PORT": str(_dsn.port or 5432),
    }
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "shop.middleware.RequestContextFilter"}},
    "formatters": {
        # a plain Django query log: timestamp, level, process, thread — no request id
        "plain": {"format": "%(asctime)s %(levelname)s %(process)d %(threadName)s %(message)s"},
        "jsonl": {"()": "shop.middleware.JsonLinesFormatter"},
    },
    "handlers": {
        "plain": {"class": "logging.FileHandler", "filename": os.path.join(LOG_DIR, "queries.log"), "formatter": "plain"},
        "jsonl": {"class": "logging.FileHandler", "filename": os.path.join(LOG_DIR, "queries.jsonl"),
                  "formatter": "jsonl", "filters": ["request"]},
    },
    "loggers": {"django.db.backends": {"level": "DEBUG", "handlers": ["plain", "jsonl"], "propagate": False}},
}
