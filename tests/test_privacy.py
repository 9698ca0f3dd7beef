"""Privacy by default: literals redacted, secrets never written.

End to end, a sentinel e-mail address is planted in SQL literals and bound parameters of a
query log, and a sentinel password in the environment variable a run names (``dsn_env``)
and in a DSN logged by another logger in the same Django log. No file of the report — HTML,
executed notebooks, findings.json, manifest.json, chapter findings files — may contain either.
With ``show_literals`` the e-mail appears; the password still never does.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import re
import string
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REQUIRE_SERVICES

from auditkit.findings import Evidence, Finding, Recommendation, Severity, Subject
from auditkit.report.redact import Redactor, redact_sql, redact_text, scrub_secrets
from auditkit.runner import run_audit
from auditkit.sql.fingerprint import fingerprint

ROOT = Path(__file__).resolve().parent.parent

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


# -- end to end: a client folder salted with sentinel secrets -------------------------------------
# Every kind of secret the redaction rules know, planted in every input format that can carry
# one. Token-shaped values are assembled from parts so that no committed line looks like a live
# credential to a secret scanner.
_RNG = random.Random(20240501)
_ALNUM = string.ascii_letters + string.digits


def _rand(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(n))


def _b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


SESSION_KEY = "q8w7e6r5t4y3u2i1o0pzx9sess10nk3y"
SESSION_KEY_2 = "m1n2b3v4c5x6z7l8k9j0hgfdsa0sessb"
PEM_BODY = "MIIEvSENTgcpkey" + _rand(48) + "\n" + _rand(64)
SECRETS: dict[str, str] = {
    "pbkdf2": "pbkdf2_sha256$870000$SaltSENTpbk01x$HashSENTpbk01Zm9vYmFyYmF6cXV4eA=",
    "argon2": "argon2$argon2id$v=19$m=102400,t=2,p=8$SaltSENTarg02x$HashSENTarg02Zm9vYmFy",
    "bcrypt_sha256": "bcrypt_sha256$$2b$12$SENTbcr03abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR",
    "scrypt": "scrypt$SaltSENTscr04x$16384$8$1$HashSENTscr04Zm9v=",
    "md5": "md5$SaltSENTmd505x$5f4dcc3b5aa765d61d8327deb882cf99",
    "sha1": "sha1$SaltSENTsha06x$7c4a8d09ca3762af61e59520943dc26494f8941b",
    "unsalted": "sha1$$SENTunsalted07aa61e59520943dc26494f8941b",
    "raw_bcrypt": "$2b$12$SENTrawbcr08R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi",
    "raw_argon2": "$argon2id$v=19$m=65536,t=3,p=4$SENTrawarg09salt$SENTrawarg09hash0RdescudvJCsgt3ub",
    "session_key": SESSION_KEY,
    "session_key_2": SESSION_KEY_2,
    "csrf": _rand(64),
    "github": "ghp" + "_" + _rand(36),
    "github_oauth": "gho" + "_" + _rand(36),
    "github_pat": "github" + "_pat_" + _rand(22) + "_" + _rand(59),
    "slack": "xo" + "xb-2400000000001-2400000000002-" + _rand(24),
    "stripe_sk": "sk" + "_live_" + _rand(24),
    "stripe_rk": "rk" + "_live_" + _rand(24),
    "aws_akia": "AK" + "IA" + _rand(16, string.ascii_uppercase + string.digits),
    "aws_asia": "AS" + "IA" + _rand(16, string.ascii_uppercase + string.digits),
    "aws_secret": _rand(18) + "/" + _rand(10) + "+" + _rand(10),
    "gcp_private_key": "-----BEGIN PRIVATE KEY-----\n" + PEM_BODY + "\n-----END PRIVATE KEY-----\n",
    "gcp_api_key": "AI" + "za" + _rand(35),
    "jwt": _b64url('{"alg":"HS256","typ":"JWT"}')
    + "."
    + _b64url('{"sub":"SENTjwt10","user_id":42}')
    + "."
    + _rand(43, _ALNUM + "-_"),
    "bearer": _rand(40),
    "basic": base64.b64encode(b"shop:PwSENTbasic01x").decode(),
    "password_kv": "PwSENTkv01x",
    "passwd_kv": "PwSENTkv02x",
    "secret_kv": "SecSENTkv03x",
    "token_kv": "TokSENTkv04x",
    "api_key_kv": "KeySENTkv05x",
    "session_kv": "SesSENTkv06x",
    "sessionid_kv": "SidSENTkv07x",
    "code_kv": "CodeSENTkv08x",
    "aws_kv": _rand(20) + "/" + _rand(19),
    "sql_password": "PwSENTsql01x",
    "sql_set_password": "PwSENTsql02x",
    "role_password": "PwSENTrole01x",
    "mysql_user_password": "PwSENTrole02x",
    "dsn_postgres": "PwSENTdsn01x",
    "dsn_mysql": "PwSENTdsn02x",
    "dsn_redis": "PwSENTdsn03x",
    "dsn_libpq": "PwSENTdsn04x",
    "reset_token": "c3k2ab-1f2e3d4c5b6a79800abc",
    "env_dsn": PASSWORD,
}
#: what a leak of each secret would look like in a file: its distinctive parts
CORES: dict[str, list[str]] = {
    name: [c for c in re.findall(r"[A-Za-z0-9]{8,}", value) if not c.startswith("eyJhbGci")]
    for name, value in SECRETS.items()
}
CORES["reset_token"] = ["1f2e3d4c5b6a79800abc"]
# a Slack token's numeric ids can turn up inside any timing float: its random tail is distinctive
CORES["slack"] = [c for c in CORES["slack"] if not c.isdigit()]
CORES["basic"] = [SECRETS["basic"].rstrip("="), "PwSENTbasic01x"]


def _django_log(root: Path) -> None:
    s = SECRETS
    lines = [
        f'[2024-05-01 10:00:00,001] DEBUG: (0.004) UPDATE "auth_user" SET "password" = \'{s["pbkdf2"]}\', "last_login" = NULL WHERE "auth_user"."id" = 1; args=(\'{s["pbkdf2"]}\', 1); alias=default',
        f'[2024-05-01 10:00:00,002] DEBUG: (0.002) SELECT "django_session"."session_key", "django_session"."session_data" FROM "django_session" WHERE ("django_session"."expire_date" > \'2024-05-01T10:00:00\'::timestamp AND "django_session"."session_key" = \'{SESSION_KEY}\') LIMIT 21; args=(datetime.datetime(2024, 5, 1, 10, 0), \'{SESSION_KEY}\'); alias=default',
        f"[2024-05-01 10:00:00,003] DEBUG: (0.003) INSERT INTO \"django_session\" (\"session_key\", \"session_data\", \"expire_date\") VALUES ('{SESSION_KEY_2}', '{s['jwt']}', '2024-05-15T10:00:00'::timestamp); args=('{SESSION_KEY_2}', '{s['jwt']}', datetime.datetime(2024, 5, 15, 10, 0)); alias=default",
        f'[2024-05-01 10:00:00,004] DEBUG: (0.002) UPDATE "auth_user" SET "password" = \'{s["sql_password"]}\' WHERE "auth_user"."id" = 2; args=(\'{s["sql_password"]}\', 2); alias=default',
        f"[2024-05-01 10:00:00,005] DEBUG: (0.002) INSERT INTO \"integrations_credential\" (\"name\", \"secret\", \"api_key\") VALUES ('github', '{s['github']}', '{s['stripe_sk']}'); args=('github', '{s['github']}', '{s['stripe_sk']}'); alias=default",
        f'[2024-05-01 10:00:00,006] DEBUG: (0.002) SELECT "authtoken_token"."key", "authtoken_token"."user_id" FROM "authtoken_token" WHERE "authtoken_token"."key" = \'{s["github_oauth"]}\' LIMIT 21; args=(\'{s["github_oauth"]}\',); alias=default',
        f"[2024-05-01 10:00:00,007] INFO: connecting to postgres://shop:{s['dsn_postgres']}@db.internal:5432/shop with aws_secret_access_key={s['aws_kv']}",
        f"[2024-05-01 10:00:00,008] WARNING: upstream answered 401 for Authorization: Bearer {s['bearer']}",
        f"[2024-05-01 10:00:00,009] WARNING: retrying with Basic {s['basic']} and maps key {s['gcp_api_key']}",
    ]
    for i in range(6):  # an N+1 over an e-mail literal, so statements reach the findings
        lines.append(
            f'[2024-05-01 10:00:01,{100 + i:03d}] DEBUG: (0.0{i + 1}0) SELECT "auth_user"."id" FROM "auth_user" WHERE "auth_user"."email" = \'{EMAIL}\' AND "auth_user"."id" = {i}; args=(\'{EMAIL}\', {i}); alias=default'
        )
    (root / "django").mkdir(parents=True, exist_ok=True)
    (root / "django" / "queries.log").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _jsonl(root: Path) -> None:
    s = SECRETS
    records: list[dict[str, Any]] = [{"type": "meta", "format": "auditkit.queries", "version": 1}]
    statements = [
        ('UPDATE "auth_user" SET "password" = %s WHERE "auth_user"."id" = %s', [s["argon2"], 1]),
        (
            'SELECT "django_session"."session_data" FROM "django_session" WHERE "django_session"."session_key" = %s LIMIT 21',
            [SESSION_KEY],
        ),
        (
            'SELECT "shop_setting"."value" FROM "shop_setting" WHERE "shop_setting"."name" = %s',
            [s["slack"]],
        ),
        (
            'SELECT "shop_webhook"."id" FROM "shop_webhook" WHERE "shop_webhook"."url" = %s',
            [f"https://hooks.example.com/in?token={s['token_kv']}&code={s['code_kv']}"],
        ),
    ]
    for r in range(4):
        rid = f"{r + 1:032x}"
        for i, (sql, params) in enumerate(statements):
            records.append(_query(rid, r, i, sql, params))
        for i in range(6):
            records.append(
                _query(
                    rid,
                    r,
                    10 + i,
                    'SELECT "auth_user"."id" FROM "auth_user" WHERE "auth_user"."email" = %s AND "auth_user"."id" = %s',
                    [EMAIL, i],
                )
            )
    text = "\n".join(json.dumps(x) for x in records)
    text += '\n{"sql": "SELECT 1", "params": ["x"], "passwd": "' + s["passwd_kv"] + '", broken\n'
    (root / "django" / "queries.jsonl").write_text(text, encoding="utf-8")


def _query(rid: str, r: int, i: int, sql: str, params: list[Any]) -> dict[str, Any]:
    return {
        "ts": f"2024-05-01T10:00:0{r}.{100 + i:03d}Z",
        "duration_ms": 2.5 + i,
        "sql": sql,
        "params": params,
        "alias": "default",
        "request_id": rid,
        "endpoint": "account/",
        "method": "GET",
        "pid": 7,
        "thread": "MainThread",
    }


def _mysql_slow(root: Path) -> None:
    s = SECRETS
    entries = [
        f"UPDATE `auth_user` SET `password` = '{s['raw_bcrypt']}' WHERE `auth_user`.`id` = 3;",
        f"SELECT `django_session`.`session_data` FROM `django_session` WHERE `django_session`.`session_key` = '{SESSION_KEY}' LIMIT 21;",
        f"CREATE USER 'reporting'@'%' IDENTIFIED BY '{s['mysql_user_password']}';",
        f"SELECT `auth_user`.`id` FROM `auth_user` WHERE `auth_user`.`email` = '{EMAIL}';",
        f"SELECT `shop_config`.`value` FROM `shop_config` WHERE `shop_config`.`value` = 'mysql://root:{s['dsn_mysql']}@db/app';",
    ]
    out = [
        "/usr/sbin/mysqld, Version: 8.0.36 (MySQL Community Server - GPL). started with:",
        "Tcp port: 3306  Unix socket: /var/run/mysqld/mysqld.sock",
        "Time                 Id Command    Argument",
    ]
    for i, sql in enumerate(entries):
        out += [
            f"# Time: 2024-05-01T10:00:0{i}.000000Z",
            "# User@Host: shop[shop] @ localhost []  Id:    12",
            f"# Query_time: 0.{i + 2}00000  Lock_time: 0.000010 Rows_sent: 1  Rows_examined: 1000",
            "use shop;",
            f"SET timestamp={1714557600 + i};",
            sql,
        ]
    (root / "mysql").mkdir(parents=True, exist_ok=True)
    (root / "mysql" / "slow.log").write_text("\n".join(out) + "\n", encoding="utf-8")


def _attr(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def _traces(root: Path) -> None:
    s = SECRETS
    start = 1714557600_000_000_000
    trace = "5b8efff798038103d269b633813fc60c"
    url = f"https://shop.example.com/accounts/reset/MQ/{s['reset_token']}/?token={s['token_kv']}&email={EMAIL}"
    spans = [
        {
            "traceId": trace,
            "spanId": "eee19b7ec3c1b174",
            "name": "GET accounts/reset/",
            "kind": 2,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + 40_000_000),
            "attributes": [
                _attr("http.request.method", "GET"),
                _attr("url.full", url),
                _attr("http.route", "accounts/reset/<uidb64>/<token>/"),
                _attr("http.request.header.authorization", f"Bearer {s['bearer']}"),
                _attr(
                    "http.request.header.cookie", f"sessionid={SESSION_KEY}; csrftoken={s['csrf']}"
                ),
                {"key": "http.response.status_code", "value": {"intValue": "200"}},
            ],
        },
        {
            "traceId": trace,
            "spanId": "eee19b7ec3c1b175",
            "parentSpanId": "eee19b7ec3c1b174",
            "name": "UPDATE shop",
            "kind": 3,
            "startTimeUnixNano": str(start + 1_000_000),
            "endTimeUnixNano": str(start + 9_000_000),
            "attributes": [
                _attr("db.system", "postgresql"),
                _attr(
                    "db.statement",
                    f'UPDATE "auth_user" SET "password" = \'{s["md5"]}\' WHERE "auth_user"."id" = 4',
                ),
            ],
        },
        {  # not a valid span (bad trace id): skipped, and its excerpt must not leak
            "traceId": "not-hex",
            "attributes": [_attr("google.api_key", s["gcp_api_key"])],
            "spanId": "eee19b7ec3c1b176",
            "name": "bad",
        },
    ]
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attr("service.name", "shop")]},
                "scopeSpans": [
                    {"scope": {"name": "opentelemetry.instrumentation.django"}, "spans": spans}
                ],
            }
        ]
    }
    (root / "traces").mkdir(parents=True, exist_ok=True)
    (root / "traces" / "otlp.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")

    jaeger = {
        "data": [
            {
                "traceID": "7a2e5c0b9d1f3a4c",
                "spans": [
                    {
                        "traceID": "7a2e5c0b9d1f3a4c",
                        "spanID": "1a2b3c4d5e6f7a8b",
                        "operationName": "GET /api/orders/",
                        "references": [],
                        "startTime": 1714557601000000,
                        "duration": 25000,
                        "tags": [
                            {"key": "span.kind", "type": "string", "value": "server"},
                            {"key": "http.method", "type": "string", "value": "GET"},
                            {
                                "key": "http.url",
                                "type": "string",
                                "value": f"https://shop.example.com/api/orders/?api_key={s['api_key_kv']}",
                            },
                            {"key": "http.status_code", "type": "int64", "value": 200},
                            {
                                "key": "aws.secret_access_key",
                                "type": "string",
                                "value": s["aws_secret"],
                            },
                        ],
                        "logs": [],
                        "processID": "p1",
                    },
                    {
                        "traceID": "7a2e5c0b9d1f3a4c",
                        "spanID": "1a2b3c4d5e6f7a8c",
                        "operationName": "SELECT",
                        "references": [
                            {
                                "refType": "CHILD_OF",
                                "traceID": "7a2e5c0b9d1f3a4c",
                                "spanID": "1a2b3c4d5e6f7a8b",
                            }
                        ],
                        "startTime": 1714557601002000,
                        "duration": 4000,
                        "tags": [
                            {"key": "db.system", "type": "string", "value": "postgresql"},
                            {
                                "key": "db.statement",
                                "type": "string",
                                "value": f'SELECT "django_session"."session_data" FROM "django_session" WHERE "django_session"."session_key" IN (\'{SESSION_KEY}\', \'{SESSION_KEY_2}\')',
                            },
                        ],
                        "logs": [],
                        "processID": "p1",
                    },
                ],
                "processes": {"p1": {"serviceName": "shop", "tags": []}},
            }
        ]
    }
    (root / "traces" / "jaeger.json").write_text(json.dumps(jaeger, indent=1), encoding="utf-8")

    dd_root = {
        "name": "django.request",
        "service": "shop",
        "resource": "GET shop.views.checkout",
        "trace_id": 4001,
        "span_id": 1,
        "parent_id": 0,
        "type": "web",
        "error": 0,
        "meta": {
            "http.method": "GET",
            "http.url": f"https://shop.example.com/checkout/?session={s['session_kv']}&sessionid={s['sessionid_kv']}",
            "http.status_code": "200",
            "http.request.headers.cookie": f"sessionid={SESSION_KEY}; csrftoken={s['csrf']}",
        },
        "metrics": {},
        "duration": 30_000_000,
        "start": 1714557602_000_000_000,
    }
    dd_db = {
        "name": "postgres.query",
        "service": "postgres",
        "resource": f'UPDATE "auth_user" SET "password" = \'{s["sha1"]}\' WHERE "auth_user"."id" = 5',
        "trace_id": 4001,
        "span_id": 2,
        "parent_id": 1,
        "type": "sql",
        "error": 0,
        "meta": {"db.system": "postgresql", "db.name": "shop"},
        "metrics": {},
        "duration": 3_000_000,
        "start": 1714557602_001_000_000,
    }
    (root / "traces" / "datadog.json").write_text(
        json.dumps([[dd_root, dd_db]], indent=1), encoding="utf-8"
    )


def _access_log(root: Path) -> None:
    s = SECRETS
    lines = []
    paths = [
        f"/accounts/reset/MQ/{s['reset_token']}/",
        f"/login/?next=/&sessionid={s['sessionid_kv']}&password={s['password_kv']}",
        f"/oauth/callback/?code={s['code_kv']}&state=abc",
        f"/api/orders/?api_key={s['api_key_kv']}&secret={s['secret_kv']}",
        f"/maps/?key={s['gcp_api_key']}",
        f"/account/?email={EMAIL}",
    ]
    for i, path in enumerate(paths * 2):
        lines.append(
            f'203.0.113.{i + 1} - - [01/May/2024:10:00:{i:02d} +0000] "GET {path} HTTP/1.1" 200 512 '
            f'"https://shop.example.com/?token={s["token_kv"]}" "Mozilla/5.0" rt=0.0{i + 1}2 rid={i + 1:032x}'
        )
    lines.append(f"GET /admin/?password={s['password_kv']} garbage without a time")
    (root / "access.log").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _redis_and_load(root: Path) -> None:
    s = SECRETS
    first = min((ROOT / "data" / "sample" / "redis").glob("info-*.txt"))  # names sort by time
    info = first.read_text(encoding="utf-8")
    (root / "redis").mkdir(parents=True, exist_ok=True)
    (root / "redis" / "info.txt").write_text(
        f"$ redis-cli -u redis://:{s['dsn_redis']}@cache.internal:6379/0 INFO\n" + info,
        encoding="utf-8",
    )
    (root / "load").mkdir(parents=True, exist_ok=True)
    (root / "load" / "locust_failures.csv").write_text(
        "Method,Name,Error,Occurrences,First Seen,Last Seen\n"
        f"GET,/api/orders/,\"HTTPError('401 Client Error: Unauthorized for url: https://shop.example.com/api/orders/?api_key={s['api_key_kv']}&token={s['token_kv']}')\",3,1714557600,1714557660\n"
        f"POST,/login/,\"CatchResponseError('login failed for {EMAIL} with password={s['password_kv']}')\",2,1714557600,1714557660\n",
        encoding="utf-8",
    )
    (root / "settings.env").write_text(
        f"DATABASE_URL={DSN}\nADMIN={EMAIL}\nSECRET_KEY={s['secret_kv']}\n", encoding="utf-8"
    )


def _postgres(root: Path) -> None:
    """PostgreSQL's own logs (stderr, csvlog, jsonlog), EXPLAIN output and the collector's exports,
    written by a throwaway server that ran a workload full of secrets."""
    import psycopg

    from auditkit.collect.postgres import collect_postgres
    from devtools.postgres import ThrowawayPostgres, available

    reason = available()
    if reason:
        message = f"cannot start a private PostgreSQL cluster: {reason}"
        if REQUIRE_SERVICES:
            pytest.fail(message + " (required in CI)")
        pytest.skip(message)
    s = SECRETS
    folder = root / "postgres"
    folder.mkdir(parents=True, exist_ok=True)
    with ThrowawayPostgres({"log_destination": "stderr,csvlog,jsonlog"}) as pg:
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            for ddl in (
                "CREATE TABLE auth_user (id serial PRIMARY KEY, password varchar(128), email varchar(254))",
                "CREATE TABLE django_session (session_key varchar(40) PRIMARY KEY, session_data text, expire_date timestamptz)",
                "CREATE TABLE shop_credential (id serial PRIMARY KEY, name text, value text)",
                "CREATE ROLE shop_app LOGIN",
            ):
                conn.execute(ddl.encode())
            hashes = ("bcrypt_sha256", "scrypt", "unsalted", "raw_argon2", "pbkdf2")
            for i, name in enumerate(hashes):
                conn.execute(
                    f"INSERT INTO auth_user (password, email) VALUES ('{s[name]}', 'u{i}@example.net')".encode()
                )
            conn.execute(
                f'UPDATE "auth_user" SET "password" = \'{s["sql_set_password"]}\' WHERE "auth_user"."id" = 1'.encode()
            )
            conn.execute(f"SELECT id FROM auth_user WHERE email = '{EMAIL}'".encode())
            # bound parameters: logged as DETAIL: parameters: $1 = '…'
            conn.execute(
                "INSERT INTO django_session VALUES (%s, %s, now())", (SESSION_KEY, s["jwt"])
            )
            conn.execute(
                "SELECT session_data FROM django_session WHERE session_key = %s", (SESSION_KEY,)
            )
            conn.execute("SELECT id FROM auth_user WHERE password = %s", (s["argon2"],))
            conn.execute("SELECT id FROM auth_user WHERE email = %s", (EMAIL,))
            for name in (
                "aws_akia",
                "aws_asia",
                "aws_secret",
                "gcp_private_key",
                "stripe_rk",
                "github_pat",
            ):
                conn.execute(
                    f"INSERT INTO shop_credential (name, value) VALUES ('{name}', '{s[name]}')".encode()
                )
            conn.execute(
                f"INSERT INTO shop_credential (name, value) VALUES ('dsn', 'host=db user=app password={s['dsn_libpq']} dbname=shop')".encode()
            )
            conn.execute(f"ALTER ROLE shop_app PASSWORD '{s['role_password']}'".encode())
            with contextlib.suppress(psycopg.Error):  # ERROR + STATEMENT lines quoting a secret
                conn.execute(f"SELECT 'token={s['token_kv']}'::int".encode())
            conn.execute(b"ANALYZE")
            for fmt, suffix in (("JSON", "json"), ("TEXT", "txt")):
                plan = conn.execute(
                    f"EXPLAIN (ANALYZE, FORMAT {fmt}) SELECT id FROM auth_user WHERE password = '{s['pbkdf2']}'".encode()
                ).fetchall()
                text = (
                    json.dumps(plan[0][0], indent=2)
                    if fmt == "JSON"
                    else "\n".join(str(r[0]) for r in plan)
                )
                (folder / f"explain_password_lookup.{suffix}").write_text(
                    text + "\n", encoding="utf-8"
                )
        env = "AUDITKIT_TEST_PRIVACY_COLLECT_DSN"
        os.environ[env] = pg.dsn
        try:
            collect_postgres(env, folder / "catalog")
        finally:
            os.environ.pop(env, None)
        pg.sync_log()
        pg.stop(save_logs_to=folder / "logs")


@pytest.fixture(scope="module")
def salted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The salted client folder (built once for the module's two runs)."""
    root = tmp_path_factory.mktemp("salted") / "acme"
    root.mkdir()
    _django_log(root)
    _jsonl(root)
    _mysql_slow(root)
    _traces(root)
    _access_log(root)
    _redis_and_load(root)
    _postgres(root)
    return root


#: every format the salted folder must feed (a detection change would silently drop a carrier)
SALTED_FORMATS = {
    "django_log",
    "jsonl_queries",
    "mysql_slow",
    "otlp_json",
    "jaeger_json",
    "datadog_json",
    "access_log",
    "redis_info",
    "locust_csv",
    "postgres_stderr",
    "postgres_csvlog",
    "postgres_jsonlog",
    "pgss_csv",
    "explain_pg_json",
    "explain_pg_text",
}


def _leaks(text: str) -> dict[str, list[str]]:
    found = {name: [c for c in cores if c in text] for name, cores in CORES.items()}
    return {k: v for k, v in found.items() if v}


def _folder_texts(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` as text; Parquet files decoded to their values, too."""
    import pyarrow.parquet as pq

    out: dict[str, str] = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        name = p.relative_to(folder).as_posix()
        out[name] = p.read_bytes().decode("utf-8", errors="replace")
        if p.suffix == ".parquet":
            table = pq.read_table(p)
            out[name + " (values)"] = json.dumps(table.to_pylist(), default=str, ensure_ascii=False)
    return out


def test_the_salted_folder_carries_every_secret_into_the_parsers(salted: Path) -> None:
    """The test can fail: each format's raw parse (before redaction) holds sentinels."""
    import auditkit

    seen: set[str] = set()
    formats: set[str] = set()
    for p in sorted(salted.rglob("*")):
        if not p.is_file() or p.suffix in (".md", ".env"):
            continue
        try:
            result = auditkit.load(p)
        except Exception:  # the collector's header-only exports yield nothing
            continue
        formats.add(result.format)
        text = json.dumps(result.report.to_dict(), default=str) + "".join(
            df.astype(str).to_json() for df in result.frames.values()
        )
        raw = _leaks(text.replace("\\/", "/").replace("\\n", "\n"))
        if result.format in SALTED_FORMATS - {"pgss_csv"} and "catalog" not in p.parts:
            assert raw, f"{p.name} ({result.format}) carries no sentinel into its parse"
        seen |= set(raw)
    assert formats >= SALTED_FORMATS, SALTED_FORMATS - formats
    # every secret is planted; most reach a parse (some only in fields no loader keeps)
    planted = "".join(
        p.read_text(encoding="utf-8", errors="replace") for p in salted.rglob("*") if p.is_file()
    )
    assert set(_leaks(planted)) == set(SECRETS)
    assert len(seen) >= len(SECRETS) - 8, set(SECRETS) - seen


@pytest.mark.parametrize("show_literals", [False, True], ids=["default", "show_literals"])
def test_no_sentinel_anywhere_in_the_output_or_the_cache(
    salted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, show_literals: bool
) -> None:
    monkeypatch.setenv(ENV, DSN)
    out, cache = tmp_path / "out", tmp_path / "cache"
    result = run_audit(salted, out, dsn_env=ENV, show_literals=show_literals, cache_dir=cache)
    # The DSN points at a host that does not exist: a chapter that tries the live database may
    # fail, and its error page and executed notebook are then checked for leaks like the rest.
    runs = {n.notebook: n for n in result.notebooks}
    assert runs["00_overview"].status == runs["10_queries"].status == "complete", result.summary()
    outputs = _folder_texts(out)
    cached = _folder_texts(cache)
    assert any(n.endswith(".html") for n in outputs) and any(n.endswith(".ipynb") for n in outputs)
    assert any(n.endswith(".parquet (values)") for n in cached)

    # grep -r, over every file of both folders
    leaks = {name: found for name, text in {**outputs, **cached}.items() if (found := _leaks(text))}
    assert not leaks, f"sentinels leaked: {leaks}"
    assert not [
        n for n, t in outputs.items() if "PRIVATE KEY-----\n" in t or "BEGIN PRIVATE KEY" in t
    ]
    # and redaction broke nothing: no chart data was taken for a token
    assert not [n for n, t in outputs.items() if re.search(r'"bdata":"[^"]*\[secret\]', t)]

    # the secrets were there, and were replaced
    manifest = json.loads(outputs[f"{result.report_dir.rsplit('/', 1)[-1]}/manifest.json"])
    inputs = {i["path"]: i for i in manifest["inputs"]}
    formats = {i["format"] for i in inputs.values() if i["status"] == "loaded"}
    assert formats >= SALTED_FORMATS, SALTED_FORMATS - formats
    assert any("[secret]" in t for n, t in outputs.items() if n.endswith(".html"))
    assert any("[secret]" in t for t in cached.values())

    # e-mails only with show_literals; the cache keeps literals (it is private), never secrets
    pages = [t for n, t in outputs.items() if n.endswith(".html")]
    if show_literals:
        # the timing source here is the capture app's log, whose statements hold placeholders
        # (their values travel apart): literals show where a source logged them in the SQL
        assert any(EMAIL in t for t in outputs.values()) or not any(EMAIL in t for t in pages)
    else:
        assert not [n for n, t in outputs.items() if EMAIL in t], "e-mail shown by default"
    assert any(EMAIL in t for t in cached.values())

    # no path of this machine in the manifest
    text = json.dumps(manifest)
    for local in (str(salted), str(out), str(cache), sys.executable, str(Path.home())):
        assert local not in text, local
    assert manifest["data_dir"] == salted.name and manifest["cache"] == "named"
    assert manifest["parameters"]["audit_dir"] == "."


def test_no_pickle_anywhere_in_the_package() -> None:
    """Nothing the package writes or reads is a pickle (a planted one would run code)."""
    import auditkit

    package = Path(auditkit.__file__).parent
    pattern = re.compile(
        r"^\s*(?:import|from)\s+(?:pickle|cPickle|_pickle|dill|cloudpickle|shelve|joblib|marshal)\b"
        r"|\b(?:pickle|dill|cloudpickle|joblib)\.(?:loads?|dumps?)\b"
        r"|\.(?:to|read)_pickle\(|allow_pickle\s*=\s*True|\bshelve\.open\(",
        re.M,
    )
    offenders = [
        f"{p.relative_to(package)}: {m.group(0).strip()}"
        for p in sorted(package.rglob("*.py"))
        for m in pattern.finditer(p.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders
    assert not [p for p in package.rglob("*") if p.suffix in (".pickle", ".pkl", ".joblib")]
