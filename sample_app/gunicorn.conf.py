"""gunicorn settings of the Sample Bookshop: threaded workers, combined access log with timing.

``gunicorn -c gunicorn.conf.py bookshop.wsgi:application`` (from this folder). The access log
is Apache/nginx "combined" followed by the request time in seconds and the request id the
app returns in ``X-Request-ID`` — the same id the query log carries::

    127.0.0.1 - - [31/Jan/2025:09:15:02 +0000] "GET /books/ HTTP/1.1" 200 9067 "-" "python-requests/2.32" rt=0.043 rid=5f0c…

Environment: ``BOOKSHOP_BIND`` (default ``127.0.0.1:8000``), ``BOOKSHOP_WEB_WORKERS`` (2),
``BOOKSHOP_WEB_THREADS`` (4), ``BOOKSHOP_ACCESS_LOG`` (``-``: stdout),
``BOOKSHOP_ERROR_LOG`` (``-``: stderr; ``scripts/make_sample.py`` passes ``--error-logfile``).
"""

from __future__ import annotations

import os

bind = os.environ.get("BOOKSHOP_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("BOOKSHOP_WEB_WORKERS", "2"))
threads = int(os.environ.get("BOOKSHOP_WEB_THREADS", "4"))
worker_class = "gthread"
timeout = 60
accesslog = os.environ.get("BOOKSHOP_ACCESS_LOG", "-")
errorlog = os.environ.get("BOOKSHOP_ERROR_LOG", "-")
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" rt=%(L)s rid=%({x-request-id}o)s'
)
proc_name = "bookshop"
