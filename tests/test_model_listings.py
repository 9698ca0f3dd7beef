"""Model dumps written by other tools: django-extensions ``graph_models --json`` and any JSON
listing of models with their tables and fields.

A small Django application (``lending``: not the sample shop) is written into a temporary
folder; django-extensions' ``graph_models --json`` and a ``_meta`` listing script run against it
in a subprocess, and both outputs must give the ``schema_columns`` rows a
:class:`~auditkit.analysis.code.CodeMap` names the models, fields and relations from. The
committed copies (``tests/fixtures/model_dumps``, see SOURCES.md) were written the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import auditkit
from auditkit.analysis.code import CodeMap

DUMPS = Path(__file__).parent / "fixtures" / "model_dumps"

SETTINGS = """
SECRET_KEY = "test"
INSTALLED_APPS = ["django.contrib.contenttypes", "django_extensions", "lending"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
"""

MODELS = """
from django.db import models


class Tag(models.Model):
    label = models.SlugField(unique=True)


class Member(models.Model):
    name = models.CharField(max_length=200, db_index=True)
    email = models.EmailField(unique=True)

    class Meta:
        db_table = "members"


class Item(models.Model):
    owner = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="items")
    title = models.CharField(max_length=300)
    barcode = models.CharField(max_length=13, db_column="barcode13")
    acquired = models.DateField(null=True)
    tags = models.ManyToManyField(Tag, blank=True)

    class Meta:
        indexes = [models.Index(fields=["acquired", "title"], name="item_acq_title_idx")]
        constraints = [
            models.UniqueConstraint(fields=["owner", "title"], name="item_owner_title_uniq")
        ]


class Loan(models.Model):
    item = models.ForeignKey(Item, on_delete=models.PROTECT)
    borrower = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="loans")
    due = models.DateTimeField()
"""

#: a listing script of the kind a client writes with Django's _meta API
LISTING = """
import json, django
django.setup()
from django.apps import apps

def field(f):
    return {
        "name": f.name, "attname": f.attname, "column": f.column,
        "type": f.get_internal_type(), "null": f.null, "unique": f.unique,
        "primary_key": f.primary_key, "db_index": f.db_index,
        "related_model": f.related_model._meta.label if f.related_model else None,
        "many_to_many": False,
    }

out = []
for m in apps.get_app_config("lending").get_models():
    out.append({
        "label": m._meta.label, "db_table": m._meta.db_table,
        "fields": [field(f) for f in m._meta.local_fields],
        "many_to_many": [
            {"name": f.name, "related_model": f.related_model._meta.label,
             "through": {"table": f.remote_field.through._meta.db_table,
                         "auto_created": bool(f.remote_field.through._meta.auto_created),
                         "source_column": f.m2m_column_name(),
                         "target_column": f.m2m_reverse_name()}}
            for f in m._meta.local_many_to_many
        ],
        "indexes": [{"name": i.name, "fields": list(i.fields)} for i in m._meta.indexes],
        "constraints": [{"name": c.name, "type": type(c).__name__, "fields": list(c.fields)}
                        for c in m._meta.constraints],
    })
print(json.dumps(out, indent=1))
"""


def _app(tmp: Path) -> dict[str, str]:
    (tmp / "lending").mkdir(parents=True)
    (tmp / "lending" / "__init__.py").write_text("")
    (tmp / "lending" / "models.py").write_text(MODELS)
    (tmp / "settings.py").write_text(SETTINGS)
    return {**os.environ, "PYTHONPATH": str(tmp), "DJANGO_SETTINGS_MODULE": "settings"}


def write_dumps(target: Path, work: Path) -> None:
    """Run graph_models --json and the _meta listing against the lending app into ``target``."""
    env = _app(work)
    target.mkdir(parents=True, exist_ok=True)
    graph = subprocess.run(
        [sys.executable, "-m", "django", "graph_models", "lending", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    ).stdout
    data = json.loads(graph)
    data["created_at"] = "2026-12-05 00:00"  # the only line that changes between runs
    (target / "graph_models_lending.json").write_text(json.dumps(data) + "\n")
    listing = subprocess.run(
        [sys.executable, "-c", LISTING],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    ).stdout
    (target / "meta_listing_lending.json").write_text(listing)


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip(
        "django_extensions", reason="django-extensions (dev extra) is not installed"
    )
    root = tmp_path_factory.mktemp("dumps")
    write_dumps(root / "out", root / "app")
    return root / "out"


def test_graph_models_output_of_this_django_extensions(dumps: Path) -> None:
    path = dumps / "graph_models_lending.json"
    assert auditkit.detect(path).format == "graph_models_json"
    result = auditkit.load(path)
    assert result.report.parsed == 4 and result.report.skipped_total == 0
    assert any("conventions" in w for w in result.report.warnings)
    cols = result.frames["schema_columns"]
    assert cols["table_inferred"].all() and cols["column_inferred"].all()
    assert set(cols["app_label"]) == {"lending"}
    assert set(cols["model"]) == {"Tag", "Member", "Item", "Loan", "Item_tags"}
    item = cols[cols["model"] == "Item"].set_index("field")
    assert (
        item.loc["owner", "column"] == "owner_id" and item.loc["owner", "fk_to"] == "lending_member"
    )
    assert item.loc["owner", "related_name"] == "items"
    assert (
        item.loc["tags", "through"] == "lending_item_tags"
        and item.loc["tags", "fk_to"] == "lending_tag"
    )
    loan = cols[cols["model"] == "Loan"].set_index("field")
    assert (
        loan.loc["item", "related_name"] == "loan_set"
        and loan.loc["borrower", "related_name"] == "loans"
    )
    # what graph_models cannot know is named by convention: the custom db_table is missed
    assert "members" not in set(cols["table"])
    code = CodeMap.build(cols, result.frames["schema_tables"], result.frames["schema_indexes"])
    assert (
        code.model("lending_item").name == "Item"
        and code.model("lending_item").app_label == "lending"
    )
    fk = code.foreign_key("lending_loan", "borrower_id")
    assert fk is not None and fk.field == "borrower" and fk.target.table == "lending_member"


def test_meta_listing_with_tables_and_columns(dumps: Path) -> None:
    path = dumps / "meta_listing_lending.json"
    assert auditkit.detect(path).format == "model_listing_json"
    result = auditkit.load(path)
    assert result.report.parsed == 4
    cols = result.frames["schema_columns"]
    assert not cols["column_inferred"].fillna(False).any() and not cols["inferred"].any()
    member = cols[cols["model"] == "Member"]
    assert set(member["table"]) == {"members"}  # Meta.db_table, read, not guessed
    item = cols[cols["model"] == "Item"].set_index("field")
    assert item.loc["barcode", "column"] == "barcode13"
    assert item.loc["owner", "fk_to"] == "members" and item.loc["owner", "column"] == "owner_id"
    assert item.loc["tags", "through"] == "lending_item_tags"
    indexes = result.frames["schema_indexes"].set_index("index")
    assert indexes.loc["item_acq_title_idx", "columns"] == "acquired, title"
    assert indexes.loc["item_owner_title_uniq", "unique"]
    assert indexes.loc["item_owner_title_uniq", "columns"] == "owner_id, title"
    code = CodeMap.build(cols, result.frames["schema_tables"], result.frames["schema_indexes"])
    assert code.model("members").name == "Member"
    assert code.field_name("lending_item", "barcode13") == "barcode"
    rel = code.many_to_many("lending_item_tags")
    assert rel is not None and rel.field == "tags"


@pytest.mark.parametrize(
    ("name", "fmt", "columns"),
    [
        ("graph_models_lending.json", "graph_models_json", 17),
        ("meta_listing_lending.json", "model_listing_json", 17),
    ],
)
def test_committed_dumps(name: str, fmt: str, columns: int) -> None:
    result = auditkit.load(DUMPS / name)
    assert result.format == fmt and len(result.frames["schema_columns"]) == columns


def test_graph_models_of_another_project(peer_data: Path) -> None:
    """A real graph_models --json (12 models, 86 fields, 12 relations; see MANIFEST.md)."""
    path = (
        peer_data
        / "analytics-platform-control-panel/doc/data_structure.md.excerpt-graph_models-json.txt"
    )
    assert auditkit.detect(path).format == "graph_models_json"
    result = auditkit.load(path)
    assert result.report.parsed == 12 and result.report.skipped_total == 0
    cols = result.frames["schema_columns"]
    # 86 fields, 2 many-to-many fields and the 2 × 2 columns of their through tables
    assert len(cols) == 92 and (cols["through"].notna()).sum() == 2
    assert {"api", "sessions"} == set(cols["app_label"])  # controlpanel.api → label api
    app = cols[(cols["model"] == "UserApp")].set_index("field")
    assert app.loc["user", "fk_to"] == "api_user" and app.loc["user", "related_name"] == "userapps"
    session = cols[cols["model"] == "Session"].set_index("field")
    assert session.loc["session_key", "primary_key"]  # an abstract parent's field is concrete here


def test_an_own_dump_is_not_claimed_by_the_listing_loader(fixtures: Path) -> None:
    dump = fixtures / "catalog" / "django_models.json"
    assert auditkit.detect(dump).format == "django_models"


if __name__ == "__main__":  # python tests/test_model_listings.py --save tests/fixtures/model_dumps
    import tempfile

    if len(sys.argv) != 3 or sys.argv[1] != "--save":
        raise SystemExit(__doc__)
    with tempfile.TemporaryDirectory() as work:
        write_dumps(Path(sys.argv[2]), Path(work))
