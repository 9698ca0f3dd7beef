"""A tiny Django project on the local PostgreSQL, used by auditkit's index-advisor tests."""
