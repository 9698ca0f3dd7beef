"""Migrations of the revisit release (``BOOKSHOP_VARIANT=revisit``, ``MIGRATION_MODULES``).

The baseline's migrations, then the fixes the client shipped after the first audit
(``PLANTED.md``, "Revisit"). ``0001_initial`` is the baseline's own, not a copy.
"""
