"""Presets, overrides and audit.yaml: values in one place, unknown names refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditkit.config import PRESETS, AuditConfig, load_config
from auditkit.errors import ConfigError


def test_every_preset_only_overrides_known_keys() -> None:
    for family, presets in PRESETS.items():
        keys = set(presets["default"])
        for name, values in presets.items():
            assert set(values) <= keys, f"{family}.{name} sets unknown keys {set(values) - keys}"


def test_preset_then_override() -> None:
    cfg = AuditConfig(presets={"n_plus_one": "sentry"}, overrides={"n_plus_one": {"min_repeats": 7}})
    t = cfg.thresholds("n_plus_one")
    assert t["min_total_ms"] == 100.0 and t["min_repeats"] == 7
    assert cfg.preset("n_plus_one") == "sentry"


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="sentry"):
        AuditConfig(presets={"n_plus_one": "nope"})
    with pytest.raises(ConfigError, match="families"):
        AuditConfig().thresholds("nope")
    with pytest.raises(ConfigError, match="min_repeats"):
        AuditConfig(overrides={"n_plus_one": {"min_repeatz": 1}})


def test_audit_yaml(tmp_path: Path) -> None:
    (tmp_path / "audit.yaml").write_text(
        "client: Acme\n"
        "formats:\n  - match: 'logs/*.log'\n    format: postgres_stderr\n    options: {prefix: '%m [%p] '}\n"
        "deployment: {web_workers: 4}\n"
        "presets: {index: dexter}\n"
        "ignore: ['*.tmp']\n"
    )
    cfg = load_config(tmp_path)
    assert cfg.client == "Acme" and cfg.deployment["web_workers"] == 4
    hint = cfg.format_for("logs/pg.log")
    assert hint is not None and hint.format == "postgres_stderr" and hint.options["prefix"] == "%m [%p] "
    assert cfg.ignored("x.tmp") and cfg.thresholds("index")["min_calls"] == 100


def test_bad_audit_yaml(tmp_path: Path) -> None:
    (tmp_path / "audit.yaml").write_text("clinet: typo\n")
    with pytest.raises(ConfigError, match="clinet"):
        load_config(tmp_path)
    (tmp_path / "audit.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path)
