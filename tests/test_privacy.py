"""Privacy by default: literals redacted, secrets never written.

End to end, a sentinel e-mail address is planted in SQL literals and bound parameters of a
query log, and a sentinel password in the environment variable a run names (``dsn_env``)
and in a DSN logged by another logger in the same Django log. No file of the report — HTML,
executed notebooks, findings.json, manifest.json, chapter findings files — may contain either.
With ``show_literals`` the e-mail appears; the password still never does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditkit.findings import Evidence, Finding, Recommendation, Severity, Subject
from auditkit.report.notebook import NOTEBOOKS_DIR
from auditkit.report.redact import Redactor, redact_sql, redact_text, scrub_secrets
from auditkit.runner import run_audit
from auditkit.sql.fingerprint import fingerprint

EMAIL = "sentinel.person@example.org"
PASSWORD = "Sentinel-Pa55word"
DSN = f"postgresql://shop:{PASSWORD}@db.internal:5432/shop"
ENV = "AUDITKIT_TEST_PRIVACY_DSN"


# -- redaction rules -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            f'SELECT "id" FROM "auth_user" WHERE "email" = \'{EMAIL}\'',
            'SELECT "id" FROM "auth_user" WHERE "email" = ?',
        ),
        (
            "SELECT * FROM t WHERE a = 1 AND b IN (2, 3.5, -4) LIMIT 21",
            "SELECT * FROM t WHERE a = ? AND b IN (?, ?, ?) LIMIT ?",
        ),
        (
            "SELECT * FROM t1 WHERE x = %s AND y = $1 AND z = %(name)s",
            "SELECT * FROM t1 WHERE x = %s AND y = $1 AND z = %(name)s",
        ),
        ("SELECT E'it\\'s', $$body$$, $t$tagged$t$, x'ff', a-1", "SELECT ?, ?, ?, ?, a-?"),
        (f"/* user {EMAIL} */ SELECT 1", "/* user [email] */ SELECT ?"),
        (
            f"SELECT * FROM t WHERE name = '{EMAIL[:12]}",
            "SELECT * FROM t WHERE name = ?",
        ),  # cut-off log line
        (f"ALTER ROLE app PASSWORD '{PASSWORD}'", "ALTER ROLE app PASSWORD ?"),
        ('SELECT "a""b".c FROM "weird ""name"""', 'SELECT "a""b".c FROM "weird ""name"""'),
    ],
)
def test_redact_sql(sql: str, expected: str) -> None:
    assert redact_sql(sql) == expected


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT "catalog_book"."id" FROM "catalog_book" WHERE "catalog_book"."id" IN (1, 2, 3) AND "title" = \'x\'',
        "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')",
        "UPDATE t SET n = n + 1 WHERE id = 42 AND flag = TRUE",
        "SELECT * FROM t WHERE created > '2024-01-01'::timestamptz ORDER BY 1 LIMIT 10 OFFSET 20",
    ],
)
def test_redacted_sql_keeps_its_fingerprint(sql: str) -> None:
    assert fingerprint(redact_sql(sql)) == fingerprint(sql)


def test_redact_text_secrets_always_emails_by_default() -> None:
    text = f"{DSN} host=db password={PASSWORD} Authorization: Bearer abcdef0123456789 mail {EMAIL}"
    out = redact_text(text)
    assert PASSWORD not in out and EMAIL not in out and "abcdef0123456789" not in out
    assert "postgresql://shop:[secret]@db.internal" in out and "[email]" in out
    kept = redact_text(text, literals=False)
    assert EMAIL in kept and PASSWORD not in kept
    assert scrub_secrets(f"x {PASSWORD} y", [PASSWORD]) == "x [secret] y"


def test_redactor_from_env_scrubs_the_dsn_and_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, DSN)
    red = Redactor.from_env(True, [ENV])  # even with literals shown
    assert red.text(f"pw is {PASSWORD}") == "pw is [secret]"
    assert PASSWORD not in red.sql(f"SELECT '{PASSWORD}'")


def test_redactor_finding_covers_every_field() -> None:
    f = Finding(
        check="n_plus_one",
        severity=Severity.HIGH,
        title=f"N+1 for {EMAIL}",
        summary=f"seen for {EMAIL}",
        subject=Subject(
            endpoint=f"users/{EMAIL}/",
            fingerprint="select ? from t",
            expression=f"email = '{EMAIL}'",
        ),
        metrics={"who": EMAIL, "n": 3},
        recommendation=Recommendation(
            f"ask {EMAIL}", sql="CREATE INDEX i ON t (a) WHERE status = 'open'"
        ),
        evidence=Evidence(
            items=(
                {
                    "sql": f"SELECT 1 WHERE e = '{EMAIL}'",
                    "params": [EMAIL],
                    "args": f"('{EMAIL}',)",
                },
            )
        ),
    )
    red = Redactor().finding(f)
    assert EMAIL not in json.dumps(red.to_dict())
    assert red.evidence.items[0]["params"] == "[redacted]"
    assert red.recommendation is not None and "'open'" in (
        red.recommendation.sql or ""
    )  # DDL stays usable
    shown = Redactor(show_literals=True).finding(f)
    assert EMAIL in json.dumps(shown.to_dict())


# -- end to end ------------------------------------------------------------------------------------
def _client(root: Path) -> Path:
    root.mkdir(parents=True)
    lines = [{"type": "meta", "format": "auditkit.queries", "version": 1}]
    for r in range(4):
        rid = f"{r + 1:032x}"
        for i in range(6):
            lines.append(
                {
                    "ts": f"2024-05-01T10:00:0{r}.{10 + i:03d}Z",
                    "duration_ms": 2.5 + i,
                    "sql": f'SELECT "auth_user"."id" FROM "auth_user" WHERE "auth_user"."email" = \'{EMAIL}\' AND "auth_user"."id" = {i}',
                    "params": [EMAIL, i],
                    "alias": "default",
                    "request_id": rid,
                    "endpoint": "account/",
                    "method": "GET",
                    "pid": 7,
                    "thread": "MainThread",
                }
            )
    (root / "queries.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8"
    )
    django = [
        f'[2024-04-04 17:46:19,115] DEBUG: (0.004) SELECT "auth_user"."id" FROM "auth_user" WHERE "auth_user"."email" = \'{EMAIL}\'; args=(\'{EMAIL}\',); alias=default',
        f"[2024-04-04 17:46:20,000] INFO: connecting to {DSN}",
        f'[2024-04-04 17:46:21,115] DEBUG: (0.120) SELECT "orders_order"."id" FROM "orders_order" WHERE "orders_order"."note" = \'call {EMAIL}\'; args=(); alias=default',
    ]
    (root / "logs").mkdir()
    (root / "logs" / "django.log").write_text("\n".join(django) + "\n", encoding="utf-8")
    (root / "settings.env").write_text(f"DATABASE_URL={DSN}\nADMIN={EMAIL}\n", encoding="utf-8")
    return root


def _report_texts(report: Path) -> dict[str, str]:
    files = [p for p in report.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in files) and any(p.suffix == ".ipynb" for p in files)
    assert any(p.name == "findings.json" for p in files) and any(
        p.name == "manifest.json" for p in files
    )
    return {
        p.relative_to(report).as_posix(): p.read_text(encoding="utf-8", errors="replace")
        for p in files
    }


def test_no_output_file_holds_the_sentinels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, DSN)
    result = run_audit(_client(tmp_path / "acme"), tmp_path / "out", dsn_env=ENV)
    # The DSN points at a host that does not exist: a chapter that tries the live database may
    # fail, and its error page and executed notebook are then checked for leaks like the rest.
    runs = {n.notebook: n for n in result.notebooks}
    assert runs["00_overview"].status == runs["10_queries"].status == "ok", result.summary()
    texts = _report_texts(Path(result.report_dir))
    leaks = {name: [s for s in (EMAIL, PASSWORD, DSN) if s in text] for name, text in texts.items()}
    assert not {k: v for k, v in leaks.items() if v}, "sentinels leaked"
    # the data was there and used: redacted statements and the skipped DSN line are reported
    assert any('"email" = ?' in t or "&quot;email&quot; = ?" in t for t in texts.values())
    manifest = json.loads(texts["manifest.json"])
    assert manifest["parameters"]["dsn_env"] == ENV and PASSWORD not in json.dumps(manifest)
    excerpts = [
        s["excerpt"] for i in manifest["inputs"] if i["report"] for s in i["report"]["skip_samples"]
    ]
    assert any("[secret]" in e for e in excerpts)


def test_show_literals_shows_the_email_but_never_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, DSN)
    result = run_audit(
        _client(tmp_path / "acme"),
        tmp_path / "out",
        dsn_env=ENV,
        show_literals=True,
        notebooks=[NOTEBOOKS_DIR / "00_overview.ipynb", NOTEBOOKS_DIR / "10_queries.ipynb"],
    )
    assert result.ok, result.summary()
    texts = _report_texts(Path(result.report_dir))
    assert any(EMAIL in t for name, t in texts.items() if name.endswith(".html"))
    assert not [name for name, t in texts.items() if PASSWORD in t]
