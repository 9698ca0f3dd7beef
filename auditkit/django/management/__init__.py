"""Management commands of the auditkit Django app."""
