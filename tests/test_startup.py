"""What a command costs before it does anything: imports.

``auditkit --help`` (and ``import auditkit``) must not pay for pandas, the loaders or the
notebook machinery; each command imports what it needs when it runs. Measured as the set of
modules loaded, not as seconds, so the test holds on a busy machine.
"""

from __future__ import annotations

import subprocess
import sys

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
