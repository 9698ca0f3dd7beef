"""The Django side of auditkit: the capture app a client adds to a project.

Installed like this, it works with ``DEBUG=False`` and in production::

    INSTALLED_APPS += ["auditkit.django"]
    MIDDLEWARE.insert(0, "auditkit.django.middleware.CaptureMiddleware")
    AUDITKIT_CAPTURE = {"dir": "/var/log/auditkit"}   # further keys: auditkit.django.conf

``auditkit.django`` (app label ``auditkit``, no models, no migrations) then writes, into the
capture folder, files a consultant hands to ``auditkit run``:

* ``queries-*.jsonl`` — every statement of every sampled request and Celery task (SQL with
  placeholders, parameters redacted at source, duration, alias, request id, optionally the
  application frames), then one record per request (route, status, duration, CPU time,
  database, cache, e-mail and outbound HTTP time) — ``docs/formats/jsonl-queries.md``;
* ``cache-*.jsonl`` — every cache operation (key, hit or miss, TTL, duration, request id);
* ``models.json`` — the model dump, written once at start-up.

The parts, one module each: :mod:`~auditkit.django.conf` (settings),
:mod:`~auditkit.django.checks` (system checks), :mod:`~auditkit.django.middleware` (requests),
:mod:`~auditkit.django.recorder` (statements), :mod:`~auditkit.django.cache` (cache
operations), :mod:`~auditkit.django.outbound` (e-mail and HTTP time),
:mod:`~auditkit.django.tasks` (Celery), :mod:`~auditkit.django.context` (the capture in
progress), :mod:`~auditkit.django.records` (the file formats), :mod:`~auditkit.django.writer`
(the writer thread and rotation), :mod:`~auditkit.django.runtime` (install, kill switch).

It also provides ``manage.py auditkit_dump_models`` (the model dump on demand,
``docs/formats/django-models.md``) and :mod:`auditkit.django.naming` (Django's index naming
rules). Nothing here is imported by ``import auditkit``; Django is only configured by the
client's project.
"""

from __future__ import annotations
