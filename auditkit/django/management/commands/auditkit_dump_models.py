"""``manage.py auditkit_dump_models``: write the model dump auditkit reads.

Usage::

    python manage.py auditkit_dump_models -o models.json          # every app
    python manage.py auditkit_dump_models --app shop --app blog   # some apps, to stdout

The format is documented in ``docs/formats/django-models.md``. The dump holds model and field
metadata only — no row, no setting, no secret — so it can be sent to a consultant as is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from auditkit.django.model_dump import dump_models


class Command(BaseCommand):
    help = (
        "Write the auditkit model dump (apps, models, tables, fields, relations, indexes) as JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-o", "--output", help="file to write (default: standard output)")
        parser.add_argument(
            "--app",
            action="append",
            dest="apps",
            metavar="LABEL",
            help="only this app label (repeatable; default: every installed app)",
        )
        parser.add_argument(
            "--database", default="default", help="connection alias whose vendor to record"
        )
        parser.add_argument(
            "--indent", type=int, default=2, help="JSON indentation (0 for one line)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from django.apps import apps

        labels = options.get("apps") or None
        for label in labels or []:
            try:
                apps.get_app_config(label)
            except LookupError:
                raise CommandError(f"no installed app with label {label!r}") from None
        data = dump_models(labels, using=options["database"])
        text = json.dumps(data, indent=options["indent"] or None, sort_keys=False) + "\n"
        output = options.get("output")
        if output:
            Path(output).write_text(text, encoding="utf-8")
            n = sum(len(a["models"]) for a in data["apps"].values())
            self.stderr.write(f"auditkit: wrote {n} models of {len(data['apps'])} apps to {output}")
        else:
            self.stdout.write(text, ending="")
