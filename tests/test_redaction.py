"""The redaction rules one by one: each named, each with texts it must redact and must keep.

The cases live in ``tests/fixtures/redaction/cases.yaml`` (a new case needs no new code). A
positive case is checked against its rule alone (exact output) and against the rule's trigger
(the pre-filter :func:`auditkit.redact.scrub_frame` relies on); a negative case against the
whole chain, so no other rule may touch it either. Real text that must come through untouched —
the plotly.js bundle every report page inlines — guards against rules that are too greedy.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml

from auditkit.redact import (
    RULES,
    SECRET_PLACEHOLDER,
    SECRET_TRIGGER,
    Redactor,
    is_secret_column,
    redact_sql,
    redact_text,
    rule,
    scrub_frame,
    scrub_secrets,
)

CASES_FILE = Path(__file__).parent / "fixtures" / "redaction" / "cases.yaml"


def _clean(text: str) -> str:
    return text.replace("·", "")  # see the header of cases.yaml


def _cases() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))


CASES = _cases()
POSITIVE = [
    pytest.param(name, _clean(i), _clean(o), id=f"{name}-{n}")
    for name, case in CASES.items()
    for n, (i, o) in enumerate(case.get("redact", []))
]
NEGATIVE = [
    pytest.param(name, _clean(t), id=f"{name}-{n}")
    for name, case in CASES.items()
    for n, t in enumerate(case.get("keep", []))
]


def test_every_rule_has_positive_and_negative_cases() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names)), "rule names must be unique"
    assert set(CASES) == set(names), "cases.yaml and RULES name the same rules"
    for name in names:
        assert CASES[name].get("redact"), f"{name}: no positive case"
        assert CASES[name].get("keep"), f"{name}: no negative case"
        assert rule(name).what, f"{name}: say what it removes"


@pytest.mark.parametrize(("name", "text", "expected"), POSITIVE)
def test_rule_redacts(name: str, text: str, expected: str) -> None:
    r = rule(name)
    assert r(text) == expected
    assert r(expected) == expected, "a rule applied twice changes nothing more"
    # the pre-filter must see every case the rule changes, with Python's re and Arrow's RE2
    assert re.search(r.trigger, text), f"{name}: trigger misses {text!r}"
    assert pc.match_substring_regex(
        pa.array([text]), SECRET_TRIGGER if r.kind == "secret" else r.trigger
    )[0].as_py()


@pytest.mark.parametrize(("name", "text"), NEGATIVE)
def test_rule_keeps(name: str, text: str) -> None:
    if rule(name).kind == "secret":
        assert scrub_secrets(text) == text
    else:
        assert redact_text(text, literals=True) == text


def test_positive_cases_leave_no_secret_through_the_whole_chain() -> None:
    for name, case in CASES.items():
        if rule(name).kind != "secret":
            continue
        for text, expected in case.get("redact", []):
            text, expected = _clean(text), _clean(expected)
            # the parts the expected output drops never survive the chain either
            dropped = set(re.findall(r"[A-Za-z0-9+/=$._-]{6,}", text)) - set(
                re.findall(r"[A-Za-z0-9+/=$._-]{6,}", expected)
            )
            out = redact_text(text, literals=False)
            assert not [d for d in dropped if d in out and SECRET_PLACEHOLDER not in d], (text, out)


def test_unknown_rule_name_lists_the_rules() -> None:
    with pytest.raises(KeyError, match="private_key_block"):
        rule("nope")


def test_plotly_bundle_passes_untouched() -> None:
    """4 MB of minified JavaScript, inlined in every page: no rule may fire on it."""
    import plotly

    js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(
        encoding="utf-8"
    )
    out = scrub_secrets(js)
    if out != js:
        at = next(i for i, (a, b) in enumerate(zip(js, out, strict=False)) if a != b)
        pytest.fail(f"a rule changed plotly.js near: {js[max(0, at - 80) : at + 80]!r}")


def test_plotly_figures_pass_untouched() -> None:
    """Charts carry their numbers as base64 (``"bdata"``): data, never mistaken for a token."""
    import numpy as np
    import plotly.graph_objects as go

    rng = np.random.default_rng(7)
    pages = []
    for _ in range(120):
        n = int(rng.integers(2, 60))
        fig = go.Figure(
            [
                go.Bar(x=rng.random(n) * 10 ** rng.integers(0, 6), orientation="h"),
                go.Histogram(x=rng.lognormal(size=n * 3)),
                go.Box(x=rng.normal(size=n)),
            ]
        )
        pages.append(fig.to_html(include_plotlyjs=False, full_html=False))
    html = "\n".join(pages)
    assert html.count('"bdata":"') >= 300
    assert scrub_secrets(html) == html


# -- the cases the issue names, through the redactor a report uses ------------------------------
HASH = "pbkdf2_sha256$870000$Q2xpZW50U2FsdA$" + "ZmFrZWhhc2hmYWtlaGFzaGZha2VoYXNoZmFrZWg="
SESSION_KEY = "w4b2l8q0n6k3r7t1y5u9i2o4p6a8s0d1"


@pytest.mark.parametrize("show_literals", [False, True])
def test_show_literals_never_shows_secrets(show_literals: bool) -> None:
    red = Redactor(show_literals=show_literals)
    statements = [
        f'UPDATE "auth_user" SET "password" = \'{HASH}\', "last_login" = NULL WHERE "auth_user"."id" = 1',
        f'SELECT "django_session"."session_data" FROM "django_session" WHERE "django_session"."session_key" = \'{SESSION_KEY}\'',
        f'INSERT INTO "django_session" ("session_key", "session_data", "expire_date") VALUES (\'{SESSION_KEY}\', \'e30:1sQ\', \'2024-05-15\')',
    ]
    for sql in statements:
        out = red.sql(sql)
        assert HASH not in out and SESSION_KEY not in out and "Q2xpZW50U2FsdA" not in out
        if show_literals:
            assert "'[secret]'" in out  # the closing quote survives
            assert out.count("'") % 2 == 0
    assert red.value({"session_key": "abc", "password": "x", "n": 3}) == {
        "session_key": SECRET_PLACEHOLDER,
        "password": SECRET_PLACEHOLDER,
        "n": 3,
    }


def test_show_literals_keeps_ordinary_literals() -> None:
    sql = 'SELECT * FROM "shop_customer" WHERE "name" = \'Ann Lee\' AND "email" = \'ann@example.org\' AND "id" = 42'
    assert redact_sql(sql, literals=False) == sql
    assert (
        redact_sql(sql)
        == 'SELECT * FROM "shop_customer" WHERE "name" = ? AND "email" = ? AND "id" = ?'
    )


@pytest.mark.parametrize(
    ("name", "table", "secret"),
    [
        ("password", None, True),
        ('"session_key"', None, True),
        ("csrftoken", None, True),
        ("sessionid", None, True),
        ("DB_PASSWORD", None, True),
        ("key", "authtoken_token", True),
        ("key", "cache", False),
        ("session_id", None, False),
        ("password_changed", None, False),
        ("token_count", None, False),
    ],
)
def test_secret_columns(name: str, table: str | None, secret: bool) -> None:
    assert is_secret_column(name, table) is secret


def test_scrub_frame_removes_secrets_and_keeps_the_rest() -> None:
    df = pd.DataFrame(
        {
            "sql": pd.array(
                [
                    f'UPDATE "auth_user" SET "password" = \'{HASH}\' WHERE "id" = 1',
                    'SELECT "a" FROM "b" WHERE "c" = \'ann@example.org\'',
                    None,
                ],
                dtype="string",
            ),
            "trace_id": pd.array(
                [SESSION_KEY, "4bf92f3577b34da6a3ce929d0e0e4736", None], dtype="string"
            ),
            "sessionid": pd.array(["abc", None, "def"], dtype="string"),
            "mixed": pd.Series([f"token={SESSION_KEY}", 3, None], dtype=object),
            "n": [1, 2, 3],
        }
    )
    out = scrub_frame(df.copy())
    assert out["sql"][0] == 'UPDATE "auth_user" SET "password" = \'[secret]\' WHERE "id" = 1'
    assert out["sql"][1] == df["sql"][1] and pd.isna(out["sql"][2])
    assert out["trace_id"][0] == SESSION_KEY  # ids are left alone
    assert list(out["sessionid"].fillna("NA")) == [SECRET_PLACEHOLDER, "NA", SECRET_PLACEHOLDER]
    assert out["mixed"][0] == "token=[secret]" and out["mixed"][1] == 3
    assert (out.dtypes == df.dtypes).all()


# -- bound parameters: the values a secret column takes ---------------------------------------------
@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [
        (  # jsonl_queries: a JSON array, %s placeholders
            'UPDATE "auth_user" SET "password" = %s WHERE "auth_user"."id" = %s',
            f'["{HASH}", 1]',
            '["[secret]", 1]',
        ),
        (  # PostgreSQL DETAIL parameters, $n placeholders, an IN list
            'SELECT 1 FROM "django_session" WHERE "django_session"."session_key" IN ($2, $3) AND "x" = $1',
            "$1 = '5', $2 = 'abc123', $3 = 'def456'",
            "$1 = '5', $2 = '[secret]', $3 = '[secret]'",
        ),
        (  # Django's args= tuple, an INSERT by column position
            'INSERT INTO "django_session" ("session_key", "session_data", "expire_date") VALUES (%s, %s, %s)',
            "('k1k1k1', 'e30:1sQ', datetime.datetime(2024, 5, 1, 10, 0))",
            "('[secret]', '[secret]', datetime.datetime(2024, 5, 1, 10, 0))",
        ),
        (  # the literal removed from the statement is removed from its parameters
            'UPDATE "auth_user" SET "password" = \'plain-pw\' WHERE "auth_user"."id" = 2',
            "('plain-pw', 2)",
            "('[secret]', 2)",
        ),
        (
            'SELECT 1 FROM "t" WHERE "password" = %(pw)s',
            '{"pw": "hunter2", "n": 1}',
            '{"pw": "[secret]", "n": 1}',
        ),
        ('SELECT 1 FROM "t" WHERE "name" = %s', "('Ann',)", "('Ann',)"),  # nothing secret
        (
            'SELECT 1 FROM "t" WHERE "name" = \'%s\' AND "password" = %s',
            "('pw1',)",
            "('[secret]',)",
        ),
    ],
)
def test_secret_parameters(sql: str, params: str, expected: str) -> None:
    from auditkit.redact import scrub_parameters

    assert scrub_parameters(sql, scrub_secrets(sql), params) == expected


def test_scrub_frame_removes_secret_parameters() -> None:
    df = pd.DataFrame(
        {
            "sql": pd.array(
                [
                    'UPDATE "auth_user" SET "password" = %s WHERE "id" = %s',
                    'SELECT "a" FROM "b" WHERE "c" = %s',
                ],
                dtype="string",
            ),
            "params": pd.array(['["plain-pw", 7]', '["ann@example.org"]'], dtype="string"),
        }
    )
    out = scrub_frame(df)
    assert list(out["params"]) == ['["[secret]", 7]', '["ann@example.org"]']


def test_scrub_values_removes_only_the_exact_values() -> None:
    from auditkit.redact import scrub_values

    page = '<p>postgres://app:pw1234@db/x password=other</p>{"bdata":"AAAA8D8"}'
    assert scrub_values(page, ["postgres://app:pw1234@db/x", "pw1234", ""]) == (
        '<p>[secret] password=other</p>{"bdata":"AAAA8D8"}'
    )
