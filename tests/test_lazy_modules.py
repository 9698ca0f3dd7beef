"""Deferred imports (:mod:`auditkit.lazy_modules`) on a package made for the test.

The package counts how often each of its modules runs, so the tests see that a deferred
package runs nothing until it is used, that an attribute answered from a submodule runs only
that submodule, and that the real import — by an attribute, or by a submodule import while
the stand-in is in place — runs every module once and leaves one set of objects.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from auditkit import lazy_modules
from auditkit.arrow import numbers, scalar, strings
from auditkit.lazy_modules import defer, is_deferred
from auditkit.loaders._pg_frames import first_appearance

PACKAGE = {
    "__init__.py": (
        "import time\ntime.sleep(0.05)\n"  # long enough for two threads to meet here
        "CAPI_SEEN = '_capi' in globals()\n"
        "from deferme.core import Thing\nfrom deferme import extra\nVERSION = '1.0'\n"
    ),
    "core.py": "class Thing:\n    pass\n",
    "extra.py": "VALUE = 42\n",
    "other.py": "from deferme.core import Thing as SameThing\n",
}


@pytest.fixture()
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The package ``deferme`` on ``sys.path``; yields the names of its modules as they run."""
    runs: list[str] = []
    root = tmp_path / "deferme"
    root.mkdir()
    for name, code in PACKAGE.items():
        (root / name).write_text("import builtins\nbuiltins._deferme_runs.append(__name__)\n" + code)
    monkeypatch.setattr("builtins._deferme_runs", runs, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield runs
    for name in [m for m in sys.modules if m == "deferme" or m.startswith("deferme.")]:
        del sys.modules[name]
    lazy_modules._ROOTS.discard("deferme")
    lazy_modules._LIGHT.pop("deferme", None)
    lazy_modules._PATHS.pop("deferme", None)


def test_a_deferred_package_runs_on_first_use(package: list[str]) -> None:
    assert defer("deferme")
    import deferme  # the stand-in: nothing runs

    assert package == [] and is_deferred("deferme")
    assert deferme.VERSION == "1.0"  # the first use imports it, once
    assert package == ["deferme", "deferme.core", "deferme.extra"]
    assert not is_deferred("deferme")
    real = sys.modules["deferme"]
    assert deferme.Thing is real.Thing and deferme.extra.VALUE == 42
    with pytest.raises(AttributeError):
        _ = deferme.missing  # a plain miss afterwards, no second import
    assert package == ["deferme", "deferme.core", "deferme.extra"]


def test_two_threads_import_it_once(package: list[str]) -> None:
    defer("deferme")
    import deferme

    with ThreadPoolExecutor(4) as pool:
        versions = list(pool.map(lambda _: deferme.VERSION, range(4)))
    assert versions == ["1.0"] * 4 and package.count("deferme") == 1


def test_what_was_set_on_the_stand_in_is_there_while_the_package_runs(
    package: list[str],
) -> None:
    """A compiled submodule imported under the stand-in may store something on its package
    that other modules look up while the package itself runs (pandas' C API capsule)."""
    defer("deferme")
    import deferme

    capi = object()
    deferme._capi = capi
    assert deferme.CAPI_SEEN is True
    assert sys.modules["deferme"]._capi is capi


def test_an_imported_module_is_not_deferred(package: list[str]) -> None:
    importlib.import_module("deferme")
    assert not defer("deferme")
    assert not is_deferred("deferme")


def test_a_submodule_import_under_the_stand_in_runs_each_module_once(package: list[str]) -> None:
    defer("deferme")
    import deferme
    import deferme.other

    assert package == ["deferme", "deferme.core", "deferme.extra", "deferme.other"]
    assert deferme.other.SameThing is deferme.Thing
    import deferme.extra  # imported by the package itself while the stand-in was asked

    assert sys.modules["deferme.extra"].__spec__.name == "deferme.extra"
    assert package.count("deferme.extra") == 1


def test_a_light_attribute_runs_only_its_submodule(package: list[str]) -> None:
    defer("deferme", {"Thing": "deferme.core"})
    import deferme

    thing = deferme.Thing
    assert package == ["deferme.core"] and is_deferred("deferme")
    assert deferme.VERSION == "1.0"  # the rest of the package, its core not run again
    assert package == ["deferme.core", "deferme", "deferme.extra"]
    assert thing is deferme.Thing is sys.modules["deferme"].Thing
    assert sys.modules["deferme"].core is sys.modules["deferme.core"]  # bound to the real one


def test_pandas_scalars_are_what_pandas_exports() -> None:
    for attr, home in lazy_modules.PANDAS_SCALARS.items():
        assert getattr(importlib.import_module(home), attr) is getattr(pd, attr)


@pytest.mark.parametrize("deferred", [True, False])
def test_texts_from_buffers_are_arrows_own(monkeypatch: pytest.MonkeyPatch, deferred: bool) -> None:
    """While pandas is deferred, texts are built from buffers; else Arrow converts them."""
    monkeypatch.setattr("auditkit.arrow.is_deferred", lambda name: deferred)
    values = ["", None, "naïve", "a\nb", "SELECT 1", None]
    built = strings(values)
    assert built.equals(pa.array(values, pa.large_string()))
    built.validate(full=True)
    assert strings([]).equals(pa.array([], pa.large_string()))
    assert strings([None, None]).null_count == 2


def test_arrow_values_without_conversion() -> None:
    ints = np.arange(5, dtype=np.int32)
    arr = numbers(ints)
    assert arr.type == pa.int32() and arr.to_pylist() == [0, 1, 2, 3, 4]
    assert numbers(np.array([1.5, np.nan])).to_pylist()[0] == 1.5
    assert numbers(ints[::2]).to_pylist() == [0, 2, 4]  # a strided view is copied first
    with pytest.raises(TypeError):
        numbers(np.array([True]))
    texts = strings(["", None, "naïve", "a\nb"])
    assert texts.to_pylist() == ["", None, "naïve", "a\nb"] and texts.null_count == 1
    texts.validate(full=True)
    assert strings([]).to_pylist() == []
    assert scalar(None, pa.string()).type == pa.string() and not scalar(None).is_valid
    assert scalar(0.5).as_py() == 0.5 and scalar(3, pa.int8()).type == pa.int8()


@pytest.mark.parametrize("seed", range(20))
def test_first_appearance_is_factorize(seed: int) -> None:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, rng.integers(1, 40), size=rng.integers(0, 300))
    group, used = first_appearance(codes)
    expected_group, expected_used = pd.factorize(codes)
    assert group.tolist() == expected_group.tolist()
    assert used.tolist() == expected_used.tolist()


def test_arrow_meets_the_real_pandas_after_a_deferred_start() -> None:
    """Arrow's C++ layer takes NaT, NA and the scalar types from the stand-in on its first
    conversion and keeps them for the life of the process: they must be pandas' own, or a
    pandas ``NaT`` would later not read as null."""
    import subprocess

    code = (
        "from auditkit.lazy_modules import defer, is_deferred, PANDAS_SCALARS\n"
        "defer('pandas', PANDAS_SCALARS)\n"
        "import numpy as np, pyarrow as pa\n"
        "from auditkit.arrow import numbers\n"
        "assert numbers(np.arange(3)).to_numpy(zero_copy_only=False).tolist() == [0, 1, 2]\n"
        "assert is_deferred('pandas')\n"
        "import pandas as pd\n"
        "ts = pa.array(np.array([pd.NaT, pd.Timestamp('2024-01-01')], dtype=object),"
        " pa.timestamp('ns'), from_pandas=True)\n"
        "assert ts.null_count == 1, ts\n"
        "assert pa.array(np.array([pd.NA, 'a'], dtype=object), from_pandas=True).null_count == 1\n"
        "assert pa.array(pd.Series(['a', None], dtype='category')).type.id == pa.dictionary(pa.int8(), pa.string()).id\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
