"""Development tools: not part of the shipped package (the wheel holds ``auditkit`` only).

:mod:`devtools.postgres`, :mod:`devtools.mariadb`, :mod:`devtools.redis` and
:mod:`devtools.memcached` start throwaway servers for the tests, the benchmarks and the
sample-data script; what they share (a free port, waiting for an answer, stopping the process,
the ``with`` block) is in :mod:`devtools._process`.
"""
