"""The package's promises about itself: public API, environment files, documentation."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

import auditkit
from auditkit.schemas import frames_markdown

ROOT = Path(__file__).resolve().parent.parent

# conda names where they differ from PyPI names
CONDA_NAMES = {"psycopg[binary]": "psycopg", "redis": "redis-py", "dask[distributed]": "dask"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ ]", requirement, maxsplit=1)[0].strip().lower()


def test_all_is_sorted_and_exported() -> None:
    assert auditkit.__all__ == sorted(auditkit.__all__), "keep auditkit.__all__ sorted"
    for name in auditkit.__all__:
        assert hasattr(auditkit, name), name


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    for req in project["dependencies"]:
        pypi = _name(req)
        expected = CONDA_NAMES.get(pypi, CONDA_NAMES.get(req.split(">")[0], pypi))
        assert expected in conda, f"{req} is in pyproject.toml but not in environment.yml"
    py = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert project["requires-python"].lstrip(">=") in py


def test_frames_documentation_is_current() -> None:
    doc = (ROOT / "docs" / "frames.md").read_text(encoding="utf-8")
    assert doc.strip() == frames_markdown().strip(), "run `make docs` to regenerate docs/frames.md"


def test_py_typed_marker() -> None:
    assert (ROOT / "auditkit" / "py.typed").is_file()
