"""Development tools: not part of the shipped package (the wheel holds ``auditkit`` only).

:mod:`devtools.postgres` starts throwaway PostgreSQL clusters for the tests, the benchmarks
and the sample-data script.
"""
