"""Settings of the Sample Bookshop, a small Django shop with planted performance problems.

Everything that differs between machines comes from the environment, twelve-factor style:

``BOOKSHOP_DATABASE_URL``
    libpq connection string or URL of the PostgreSQL database
    (default ``postgresql://postgres@127.0.0.1:5432/bookshop``).
``BOOKSHOP_REDIS_URL``
    Redis URL of the cache (default ``redis://127.0.0.1:6379/15``: a database of its own).
``BOOKSHOP_QUERY_LOG``
    when set, every SQL statement is logged by ``django.db.backends`` at DEBUG level to this
    file, behind a prefix with timestamp, process, thread and request id — the query log a
    client hands a consultant. Unset (the default), nothing is logged, as in production.
``BOOKSHOP_CONN_MAX_AGE``
    persistent connections, seconds (default 0: Django's default, a connection per request).
``BOOKSHOP_CAPTURE_DIR``
    when set, auditkit's capture app is installed as its documentation says (``auditkit.django``
    in ``INSTALLED_APPS``, its ``CaptureMiddleware`` first in ``MIDDLEWARE``) and writes its
    JSON lines (statements, requests, cache operations) and the model dump into this folder.
    Unset (the default), the shop runs without it.
``BOOKSHOP_EMAIL_HOST``, ``BOOKSHOP_EMAIL_PORT``
    the SMTP relay order confirmations go through (default ``127.0.0.1:1025``, a local sink
    such as ``python -m aiosmtpd -n`` or the one ``scripts/make_sample.py`` starts).
``BOOKSHOP_VARIANT``
    which release of the shop runs: ``baseline`` (default: every problem of ``PLANTED.md``) or
    ``revisit`` (P1, P4 and P6 fixed, one new problem — ``PLANTED.md``, "Revisit"). Read here
    as :data:`VARIANT`; models, migrations (``MIGRATION_MODULES``), views, URLs and the Locust
    traffic follow it.
``BOOKSHOP_DEBUG``, ``BOOKSHOP_SECRET_KEY``, ``BOOKSHOP_ALLOWED_HOSTS``
    the usual.

The performance problems planted in the views are listed in ``PLANTED.md``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from psycopg.conninfo import conninfo_to_dict

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("BOOKSHOP_SECRET_KEY", "sample-bookshop-not-a-secret")
DEBUG = os.environ.get("BOOKSHOP_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("BOOKSHOP_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "bookshop",
    "catalog",
    "orders",
]

#: the release of the shop (see the module docstring and PLANTED.md)
VARIANTS = ("baseline", "revisit")
VARIANT = os.environ.get("BOOKSHOP_VARIANT", "baseline") or "baseline"
if VARIANT not in VARIANTS:
    raise ImproperlyConfigured(
        f"BOOKSHOP_VARIANT must be one of {', '.join(VARIANTS)}, not {VARIANT!r}"
    )
if VARIANT == "revisit":
    # the revisit release's migrations: the baseline's, then the fixes (PLANTED.md, "Revisit")
    MIGRATION_MODULES = {
        "catalog": "catalog.migrations_revisit",
        "orders": "orders.migrations_revisit",
    }

MIDDLEWARE = [
    # first, so that every statement of the request, middleware included, carries its id
    "bookshop.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# auditkit's capture app, installed as its documentation says: the app, its middleware first
# (so it sees every statement of a request, the other middleware's included), a folder. The
# request id it records is the incoming X-Request-ID, the same one RequestIdMiddleware echoes.
CAPTURE_DIR = os.environ.get("BOOKSHOP_CAPTURE_DIR", "")
if CAPTURE_DIR:
    INSTALLED_APPS.append("auditkit.django")
    MIDDLEWARE.insert(0, "auditkit.django.middleware.CaptureMiddleware")
    AUDITKIT_CAPTURE = {"dir": CAPTURE_DIR}

ROOT_URLCONF = "bookshop.urls"
WSGI_APPLICATION = "bookshop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_url(url: str) -> dict[str, Any]:
    """Django ``DATABASES`` entry from a libpq URL or ``key=value`` connection string."""
    params = conninfo_to_dict(url)
    entry: dict[str, Any] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": params.pop("dbname", "bookshop"),
        "USER": params.pop("user", ""),
        "PASSWORD": params.pop("password", ""),
        "HOST": params.pop("host", ""),
        "PORT": str(params.pop("port", "")),
        # Django's default: a new connection for every request (see PLANTED.md, P10)
        "CONN_MAX_AGE": int(os.environ.get("BOOKSHOP_CONN_MAX_AGE", "0")),
    }
    params.setdefault("application_name", "bookshop")
    entry["OPTIONS"] = params
    return entry


DATABASES = {
    "default": database_from_url(
        os.environ.get("BOOKSHOP_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bookshop")
    )
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("BOOKSHOP_REDIS_URL", "redis://127.0.0.1:6379/15"),
        "KEY_PREFIX": "bookshop",
        "TIMEOUT": 300,
    }
}

# Order confirmations go out through Django's SMTP backend to a relay (P9: inside the request)
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = os.environ.get("BOOKSHOP_EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("BOOKSHOP_EMAIL_PORT", "1025"))
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = "orders@bookshop.example.com"

AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

QUERY_LOG = os.environ.get("BOOKSHOP_QUERY_LOG", "")

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "bookshop.request_id.RequestIdFilter"}},
    "formatters": {
        "queries": {
            "()": "bookshop.request_id.UTCFormatter",
            "format": (
                "%(asctime)s %(levelname)s pid=%(process)d thread=%(threadName)s "
                "request_id=%(request_id)s %(message)s"
            ),
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "level": "WARNING"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
}

if QUERY_LOG:
    LOGGING["handlers"]["queries"] = {
        "class": "bookshop.request_id.AppendFileHandler",
        "filename": QUERY_LOG,
        "filters": ["request_id"],
        "formatter": "queries",
        "level": "DEBUG",
    }
    LOGGING["loggers"] = {
        "django.db.backends": {"handlers": ["queries"], "level": "DEBUG", "propagate": False},
    }
