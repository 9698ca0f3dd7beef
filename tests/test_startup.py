"""What a command costs before it does anything: imports.

``auditkit --help`` (and ``import auditkit``) must not pay for pandas, the loaders or the
notebook machinery; each command imports what it needs when it runs. Measured as the set of
modules loaded, not as seconds, so the test holds on a busy machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DIGEST_SHAPES

HEAVY = ("pandas", "numpy", "pyarrow", "sqlglot", "plotly", "nbformat", "papermill")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_help_imports_nothing_heavy() -> None:
    loaded = _modules_after(
        "from click.testing import CliRunner\n"
        "from auditkit.cli import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'digest' in r.output\n"
        "for c in ('run', 'digest'):\n"
        "    assert CliRunner().invoke(cli, [c, '--help']).exit_code == 0\n"
    )
    assert not [m for m in HEAVY if m in loaded]


def test_import_auditkit_is_lazy_but_complete() -> None:
    loaded = _modules_after("import auditkit")
    assert "pandas" not in loaded and "auditkit.loaders" not in loaded
    import auditkit

    for name in auditkit.__all__:  # every public name still resolves
        assert getattr(auditkit, name) is not None, name
    assert "fingerprint" in dir(auditkit)


def test_public_functions_named_like_their_modules_stay_functions() -> None:
    # importing the submodule first must not replace auditkit.digest / auditkit.load
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import auditkit.digest, auditkit.load, auditkit\n"
            "print(callable(auditkit.digest) and not hasattr(auditkit.digest, '__path__'),"
            " type(auditkit.digest).__name__, type(auditkit.load).__name__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["True", "function", "function"]


def test_loader_patterns_compile_when_used() -> None:
    """Importing every loader compiles none of their module-level patterns (each start of a
    command used to pay ~30 ms for some 250 of them); one compiles on its first use, and a
    compiled one behaves as ``re.compile`` would."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import re, sys\n"
            "calls = []\n"
            "real = re.compile\n"
            "def spy(p, flags=0):\n"
            "    f = sys._getframe(1)\n"
            "    if f.f_globals['__name__'].startswith('auditkit'): calls.append(p)\n"
            "    return real(p, flags)\n"
            "re.compile = spy\n"
            "import auditkit.loaders\n"
            "re.compile = real\n"
            "from auditkit.loaders import _explain_pg_text as m\n"
            "later = [v for v in vars(m).values() if type(v).__name__ == '_Later']\n"
            "print(len(calls), len(later), sum('match' in vars(v) for v in later))\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    at_import, later, compiled = map(int, out)
    assert later >= 20 and compiled == 0
    assert at_import <= 12, f"{at_import} patterns compiled while importing the loaders"


def test_a_pattern_compiled_later_is_the_pattern() -> None:
    import copy
    import pickle
    import re

    from auditkit.lazy_re import compile_later

    rx = compile_later(r"(?P<word>[a-z]+)\s+(\d+)", re.I)
    assert "match" not in vars(rx)  # nothing compiled yet
    assert rx.pattern == r"(?P<word>[a-z]+)\s+(\d+)"
    m = rx.match("Rows 42")
    assert m is not None and m.group("word") == "Rows" and m.group(2) == "42"
    assert rx.groupindex == {"word": 1} and rx.groups == 2
    assert rx.sub(r"\2", "a 1, b 2") == "1, 2"
    assert rx.flags == re.compile(rx.pattern, re.I).flags
    for other in (pickle.loads(pickle.dumps(rx)), copy.deepcopy(rx)):
        assert other.findall("x 1 y 2") == [("x", "1"), ("y", "2")]


#: modules only a full ``import pandas`` loads (its compiled core alone does not)
PANDAS_PROPER = ("pandas.core.frame", "pandas.core.api", "pandas.io.api")


@pytest.mark.parametrize("log", DIGEST_SHAPES, ids=lambda p: p.name)
@pytest.mark.parametrize("as_json", [True, False])
def test_a_digest_of_a_postgres_log_never_imports_pandas(log: Path, as_json: bool) -> None:
    """``auditkit digest LOG`` reads a PostgreSQL log into its profile and prints it with
    NumPy and Arrow alone: pandas, a fifth of the command on the benchmark's 100 MiB log,
    is deferred and never needed (:mod:`auditkit.lazy_modules`)."""
    args = ["digest", str(log), *(["--json"] if as_json else [])]
    loaded = _modules_after(
        "from auditkit.cli import cli\n"
        f"cli.main({args!r}, standalone_mode=False)\n"
        "from auditkit.lazy_modules import is_deferred\n"
        "assert is_deferred('pandas')\n"
    )
    assert "auditkit.loaders._pg_native" in loaded  # the block path did run
    assert not [m for m in PANDAS_PROPER if m in loaded]


def test_a_digest_that_needs_pandas_imports_it_and_gives_the_same_profile(tmp_path: Path) -> None:
    """A file only pandas reads (a pg_stat_statements export, loaded whole) beside a log:
    the stand-in imports pandas in the middle of the command, and the output is the one
    a process that imported pandas first prints."""
    fixtures = Path(__file__).parent / "fixtures"
    files = [str(fixtures / "postgres" / "multiline_param.log"), str(fixtures / "pgss" / "pg17.csv")]
    code = (
        "from auditkit.cli import cli\n"
        f"cli.main(['digest', *{files!r}, '--json'], standalone_mode=False)\n"
    )
    deferred = subprocess.run(
        [sys.executable, "-c", code + "import sys; assert 'pandas.core.frame' in sys.modules"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    eager = subprocess.run(
        [sys.executable, "-c", "import pandas\n" + code], capture_output=True, text=True, check=True
    ).stdout

    def profile(out: str) -> object:
        data = json.loads(out)
        return data["statements"], [{**f, "elapsed_s": 0} for f in data["files"]]

    assert profile(deferred) == profile(eager)
