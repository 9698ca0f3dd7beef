"""What the report says is true of the client, not of our own sample shop."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _sample_names() -> tuple[set[str], set[str]]:
    """The sample application's model classes and their tables (``app_model``)."""
    models, tables = set(), set()
    for path in sorted((ROOT / "sample_app").glob("*/models.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                models.add(node.name)
                tables.add(f"{path.parent.name}_{node.name.lower()}")
    return models, tables


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a module that are not docstrings: what it writes into findings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_no_sample_application_name_in_generated_text() -> None:
    """No model, table or project name of sample_app appears in any string auditkit writes:
    every fix is derived from the client's own models."""
    models, tables = _sample_names()
    assert {"Book", "OrderLine"} <= models and "catalog_book" in tables  # the scan sees the app
    pattern = re.compile(
        rf"\b(?:{'|'.join(sorted(models | tables))})\b|\bbookshop\b|\border_lines\b"
    )
    hits = [
        f"{path.relative_to(ROOT)}:{line}: {text[:60]!r}"
        for path in sorted((ROOT / "auditkit").rglob("*.py"))
        for line, text in _code_strings(path)
        if pattern.search(text)
    ]
    assert not hits, hits
