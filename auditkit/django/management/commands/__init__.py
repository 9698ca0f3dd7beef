"""``manage.py auditkit_*`` commands."""
