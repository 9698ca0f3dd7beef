"""The statement normaliser: the rule table in fixtures/fingerprints.tsv, and both engines agreeing.

Each line of ``tests/fixtures/fingerprints.tsv`` is a case (statement → fingerprint), so a new
rule or bug needs a new line, not new code. :func:`fingerprint` (Python ``re``, one statement)
and :func:`fingerprint_many` (Arrow's RE2 kernels, a whole column) run the same rules through
two regex engines whose dialects differ in corners; they are held to the same output on the
table and on every statement of a real Django log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from auditkit.loaders.registry import get_loader
from auditkit.sql.fingerprint import Dialect, fingerprint, fingerprint_id, fingerprint_many

TABLE = Path(__file__).parent / "fixtures" / "fingerprints.tsv"
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


@dataclass(frozen=True)
class Case:
    """One line of the table."""

    line: int
    sql: str
    expected: str
    dialect: Dialect


def _unescape(text: str) -> str:
    r"""Decode the table's escapes: ``\n``, ``\t`` and ``\\`` (any other backslash is literal)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPES:
            out.append(_ESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def read_table(path: Path = TABLE) -> list[Case]:
    """The cases of the fixture table (see its header for the format)."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        assert len(cols) in (2, 3), f"{path.name}:{number}: expected 2 or 3 TAB-separated columns"
        dialect = cols[2].strip() if len(cols) == 3 and cols[2].strip() else "postgres"
        assert dialect in ("postgres", "mysql"), f"{path.name}:{number}: unknown dialect {dialect}"
        cases.append(Case(number, _unescape(cols[0]), _unescape(cols[1]), dialect))  # type: ignore[arg-type]
    return cases


CASES = read_table()


def test_table_is_not_trivially_small() -> None:
    assert len(CASES) >= 60
    assert {c.dialect for c in CASES} == {"postgres", "mysql"}


@pytest.mark.parametrize("case", CASES, ids=[f"line{c.line}" for c in CASES])
def test_fingerprint_rule(case: Case) -> None:
    assert fingerprint(case.sql, case.dialect) == case.expected


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_engines_agree_on_the_table(dialect: Dialect) -> None:
    sql = [c.sql for c in CASES if c.dialect == dialect]
    fps, ids = fingerprint_many(sql, dialect)
    assert fps.tolist() == [fingerprint(s, dialect) for s in sql]
    assert ids.tolist() == [fingerprint_id(fingerprint(s, dialect)) for s in sql]


def test_fingerprint_is_idempotent() -> None:
    """A fingerprint fingerprints to itself: pgss texts and our own output are stable inputs."""
    for case in CASES:
        assert fingerprint(case.expected, case.dialect) == case.expected, case.line


def test_engines_agree_on_a_real_django_log(peer_data: Path) -> None:
    """Every statement of the peer Django log (5448, multi-line, migrations, datetimes)."""
    result = get_loader("django_log").load(peer_data / "linea-it-target/logs/sql.log")
    sql = result.frame["sql"]
    assert len(sql) == 5448
    fps, _ = fingerprint_many(sql)
    python = [fingerprint(s) for s in sql]
    mismatches = [(s, a, b) for s, a, b in zip(sql, fps, python, strict=True) if a != b]
    assert not mismatches, mismatches[:3]
    # the loader's column comes from the same function
    assert result.frame["fingerprint"].tolist() == python
    # grouping did something: far fewer groups than statements, no literal left in them
    assert fps.nunique() < len(sql) / 5
    assert not fps.str.contains(r"= '|= \d", regex=True).any()


def test_fingerprint_many_keeps_index_and_nulls() -> None:
    sql = pd.Series(["SELECT 1", None, "select  2"], index=[10, 20, 30], dtype="string")
    fps, ids = fingerprint_many(sql)
    assert fps.index.tolist() == [10, 20, 30]
    assert fps.tolist()[0] == fps.tolist()[2] == "select ?"
    assert fps.isna().tolist() == [False, True, False]
    assert ids.isna().tolist() == [False, True, False]
    assert fingerprint_many([])[0].empty


def test_fingerprint_id_is_stable() -> None:
    # a change here changes every stored findings.json: only on purpose
    assert fingerprint_id("select ?") == "b9a4c90ce4157373"
    assert fingerprint_id("select ?") != fingerprint_id("select ? from t")


def test_numbers_grouped_before_the_rules_never_merge_identifiers() -> None:
    """fingerprint_many runs the rules once per group of texts that differ only in whole
    numbers; a number inside a quoted identifier, a hex or exponent literal, a decimal, a
    digit in a word or at the start of a text must still give each text its own fingerprint."""
    sql = [
        'SELECT "page 1" FROM "t" WHERE "id" = 1',
        'SELECT "page 2" FROM "t" WHERE "id" = 2',
        'SELECT "c" FROM "t (3)" WHERE "id" = 3',
        'SELECT "c" FROM "t (4)" WHERE "id" = 4',
        "SELECT a FROM t1 WHERE b = 0x1F",
        "SELECT a FROM t2 WHERE b = 5x1F",
        "SELECT 1e5 + 2.5, 3.5.1",
        "SELECT 7e5 + 8.5, 9.5.2",
        "7 + 8",
        "9 + 8",
        "SELECT '12 apples', \"x 12\" FROM t",
        "SELECT '13 apples', \"x 13\" FROM t",
        "SELECT a FROM t WHERE b IN (1, 2,3) AND c = -4",
        "SELECT a FROM t WHERE b IN (5, 6,7) AND c = -8",
    ]
    fps, _ = fingerprint_many(sql)
    assert fps.tolist() == [fingerprint(s) for s in sql]
    assert len(set(fps[:4])) == 4 and fps[4] != fps[5] and fps[8] != fps[9]  # "7 + ?"
    assert fps[12] == fps[13] and fps[10] != fps[11]
    my = ["SELECT `page 1` FROM `t` WHERE `id` = 1", "SELECT `page 2` FROM `t` WHERE `id` = 2"]
    fps, _ = fingerprint_many(my, "mysql")
    assert fps.tolist() == [fingerprint(s, "mysql") for s in my] and fps[0] != fps[1]


def test_engines_agree_on_numbers_in_every_context() -> None:
    """Numbers in every context a statement can hold them, in random combinations."""
    import random

    rng = random.Random(7)
    parts = [
        '"t{n}"', '"a b {n}"', "t{n}", "= {n}", "=-{n}", "({n})", "[{n}]", "'{n}'", "E'\\\\{n}'",
        "$${n}$$", "/* {n} */", "-- {n}\n", "${n}", "%({n})s", "{n}.{n}", "{n}e{n}", "0x{n}",
        ", {n}", "::numeric({n}, {n})", "LIMIT {n}", "s{n}_x{n}", "`{n}`", "#{n}\n",
    ]  # fmt: skip
    sql = [
        "SELECT " + " ".join(rng.choice(parts).format(n=rng.randint(0, 999)) for _ in range(6))
        for _ in range(3000)
    ]
    for dialect in ("postgres", "mysql"):
        fps, _ = fingerprint_many(sql, dialect)  # type: ignore[arg-type]
        assert fps.tolist() == [fingerprint(s, dialect) for s in sql]  # type: ignore[arg-type]
