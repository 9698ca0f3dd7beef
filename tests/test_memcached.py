"""memcached replies written by a real memcached started by the test: read back with exact counts.

``stats`` as a series, ``stats items``, ``stats slabs``, ``stats settings`` (CRLF, as the server
sends them), ``stats detail dump`` after ``stats detail on`` and ``lru_crawler metadump all``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import auditkit
from auditkit.loaders.cache_stats import cache_stats_deltas
from auditkit.loaders.detect import detect
from auditkit.loaders.memcached import key_family
from tests.conftest import REQUIRE_SERVICES


@pytest.fixture(scope="module")
def replies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    from devtools.memcached import ThrowawayMemcached, available

    reason = available()
    if reason:
        if REQUIRE_SERVICES:
            pytest.fail(reason + " (required in CI)")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("memcached")
    with ThrowawayMemcached(16) as mc:  # no LRU maintainer: the metadump sees every key
        assert mc.command("stats detail on").strip() == "OK"
        series = mc.command("stats")
        for user in range(30):  # per-user profiles: read 3 times, 2 users never cached
            mc.command(f"set user:{user}:profile 0 300 5", b"hello")
        mc.command("set config:site 0 0 2", b"ok")
        for _rnd in range(3):
            for user in range(32):
                mc.command(f"get user:{user}:profile")
            mc.command("get config:site")
        mc.command("delete user:0:profile")
        series += mc.command("stats")
        files = {
            "series": series,
            "items": mc.command("stats items"),
            "slabs": mc.command("stats slabs"),
            "settings": mc.command("stats settings"),
            "detail": mc.command("stats detail dump"),
            "metadump": "2030-01-01T00:00:00Z\n" + mc.command("lru_crawler metadump all"),
        }
    out = {}
    for name, text in files.items():
        path = folder / f"{name}.txt"
        path.write_bytes(text.encode())
        out[name] = path
    yield out


def _stat_lines(path: Path) -> int:
    return sum(1 for ln in path.read_text().splitlines() if ln.startswith("STAT "))


@pytest.mark.parametrize(("name", "section"), [("series", "stats"), ("items", "items"), ("slabs", "slabs"), ("settings", "settings")])
def test_stats_replies(replies: dict[str, Path], name: str, section: str) -> None:
    assert detect(replies[name]).format == "memcached_stats"
    result = auditkit.load(replies[name])
    result.report.check()
    df = result.frame
    assert len(df) == _stat_lines(replies[name]) and (df["section"] == section).all()
    assert result.report.skipped_total == 0


def test_series_gives_rates(replies: dict[str, Path]) -> None:
    df = auditkit.load(replies["series"]).frame
    assert df["snapshot"].nunique() == 2 and df["ts"].nunique() >= 1
    last = df[df["snapshot"] == 2].set_index("metric")["value"]
    assert last["get_hits"] == 3 * 30 + 3 and last["get_misses"] == 3 * 2
    assert last["cmd_set"] == 31 and last["delete_hits"] == 1
    flags = df.drop_duplicates("metric").set_index("metric")["counter"]
    assert flags["get_hits"] and flags["evictions"] and not flags["curr_items"] and not flags["uptime"]


def test_detail_dump_is_key_families(replies: dict[str, Path]) -> None:
    assert detect(replies["detail"]).format == "memcached_detail"
    result = auditkit.load(replies["detail"])
    result.report.check()
    fam = result.frame.set_index("key_prefix")
    lines = [ln for ln in replies["detail"].read_text().splitlines() if ln.startswith("PREFIX ")]
    assert len(fam) == len(lines) == 2
    assert fam.loc["user", "gets"] == 3 * 32 and fam.loc["user", "hits"] == 3 * 30
    assert fam.loc["user", "sets"] == 30 and fam.loc["user", "deletes"] == 1
    assert fam.loc["user", "hit_ratio"] == pytest.approx(90 / 96)
    assert fam.loc["config", "hit_ratio"] == 1.0


def test_metadump_is_keys_and_families(replies: dict[str, Path]) -> None:
    assert detect(replies["metadump"]).format == "memcached_metadump"
    result = auditkit.load(replies["metadump"])
    result.report.check()
    keys = result.frames["cache_keys"]
    assert len(keys) == len(re.findall(r"(?m)^key=", replies["metadump"].read_text())) == 30
    assert set(keys["key_prefix"]) == {"user:{n}:profile", "config:site"}
    assert keys["fetched"].all()  # every key left was read at least once
    user = keys[keys["key_prefix"] == "user:{n}:profile"]
    assert user["expires_at"].notna().all() and keys.loc[keys["key"] == "config:site", "expires_at"].isna().all()
    fam = result.frames["cache_key_families"].set_index("key_prefix")
    assert fam.loc["user:{n}:profile", "keys"] == 29 and fam.loc["config:site", "no_expiry_keys"] == 1
    assert fam.loc["user:{n}:profile", "size_bytes"] == user["size_bytes"].sum()


def test_key_family() -> None:
    assert key_family(":1:user:42:profile") == ":{n}:user:{n}:profile"
    assert key_family("views.decorators.cache.cache_page.abcdef0123456789abcdef.GET") == (
        "views.decorators.cache.cache_page.{hex}.GET"
    )
    assert key_family("sess:3f2b8c1e-1111-4a5b-9c3d-0123456789ab") == "sess:{uuid}"


def test_cache_stats_deltas(tmp_path: Path) -> None:
    p = tmp_path / "series.txt"
    p.write_text(
        "STAT pid 7\r\nSTAT time 1000\r\nSTAT evictions 10\r\nSTAT curr_items 5\r\nEND\r\n"
        "STAT pid 7\r\nSTAT time 1060\r\nSTAT evictions 70\r\nSTAT curr_items 9\r\nEND\r\n"
        "STAT pid 7\r\nSTAT time 1120\r\nSTAT evictions 3\r\nSTAT curr_items 1\r\nEND\r\n"
    )
    rates = cache_stats_deltas(auditkit.load(p).frame)
    ev = rates[rates["metric"] == "evictions"].reset_index(drop=True)
    assert list(ev["rate_per_s"].iloc[:1]) == [1.0] and bool(ev["reset"].iloc[1])
    assert set(rates["metric"]) == {"evictions"}
    assert pd.isna(ev["rate_per_s"].iloc[1])
