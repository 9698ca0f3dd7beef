"""Shared fixtures: where the peer corpus is, and the local services.

Features that talk to a service are tested against the real one on its standard local port.
Locally and in CI (``CI=true`` or ``AUDITKIT_REQUIRE_SERVICES=1``) a missing service is a
failure; for anyone else those tests skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PEER_DATA = ROOT.parent / "shared" / "peer-data"
#: PostgreSQL stderr logs of the fixtures, one for each path a digest takes through a log
DIGEST_SHAPES = [
    FIXTURES / "postgres" / "postgresql-9.6-debian-with-slowlog.log",  # server events, untimed
    FIXTURES / "postgres" / "postgresql-query-steps-slowlog.log",  # parse, bind and execute
    FIXTURES / "postgres" / "multiline_param.log",  # statements and parameters on several lines
    FIXTURES / "postgres" / "pg-timezones.log",  # times in several zones
]

REQUIRE_SERVICES = os.environ.get("CI") == "true" or os.environ.get("AUDITKIT_REQUIRE_SERVICES") == "1"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip (or fail, where services are required) unless ``host:port`` answers."""
    if _port_open(host, port):
        return
    message = f"{name} is not running on {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (required in CI)")
    pytest.skip(message)


@pytest.fixture(autouse=True, scope="session")
def _private_parse_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs that use the default parse cache write to a throwaway folder, not the user's."""
    previous = os.environ.get("AUDITKIT_CACHE_DIR")
    os.environ["AUDITKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("parse-cache"))
    yield
    if previous is None:
        os.environ.pop("AUDITKIT_CACHE_DIR", None)
    else:
        os.environ["AUDITKIT_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def peer_data() -> Path:
    """The shared peer-data corpus next to the repository; tests skip when it is absent."""
    if not PEER_DATA.is_dir():
        pytest.skip("peer-data corpus not found beside the repository")
    return PEER_DATA


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of the local PostgreSQL server (database 'postgres')."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    return os.environ.get("AUDITKIT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def mysql_params() -> dict[str, object]:
    need_service("MariaDB/MySQL", "127.0.0.1", 3306)
    return {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}


@pytest.fixture(scope="session")
def redis_url() -> str:
    need_service("Redis", "127.0.0.1", 6379)
    return os.environ.get("AUDITKIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


#: Chromium flags for a closed network: no background requests, no first-run work
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's, driven by Playwright); skipped where missing, except in CI."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if REQUIRE_SERVICES:
            pytest.fail("chromium is not installed (required in CI: apt-get install chromium)")
        pytest.skip("chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()
