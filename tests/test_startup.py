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
