"""Generated text spells plurals out: "1 row", "3 rows", never "3 row(s)"."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from auditkit.findings import plural

PACKAGE = Path(__file__).parents[1] / "auditkit"
#: the parts of the package whose strings reach a report, findings.json or the console
TEXT_MODULES = [
    *sorted((PACKAGE / "checks").rglob("*.py")),
    *sorted((PACKAGE / "report").rglob("*.py")),
    *sorted((PACKAGE / "sql").rglob("*.py")),
    *sorted((PACKAGE / "analysis").rglob("*.py")),
    *(
        PACKAGE / name
        for name in (
            "findings.py",
            "auditing.py",
            "client.py",
            "requests.py",
            "config.py",
            "schemas.py",
        )
    ),
]
_PARENTHESISED = re.compile(r"[A-Za-z]\((?:s|es)\)")


def _strings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_no_parenthesised_plurals_in_generated_text() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{line}: {text.strip()[:60]}"
        for path in TEXT_MODULES
        for line, text in _strings(path)
        if _PARENTHESISED.search(text)
    ]
    assert not found, found


def test_the_plural_helper() -> None:
    assert plural(1, "row") == "1 row"
    assert plural(2, "index", "indexes") == "2 indexes"
    assert plural(1234, "call") == "1,234 calls"
