"""Deployment facts — instances, workers, threads, connection limits — each with its source.

The scaling chapter sizes workers and connections from what the deployment *is*. The facts
come from, in order of trust:

1. ``audit.yaml``'s ``deployment`` section (what the client says);
2. the application server's own start-up lines (``server_settings`` rows with ``server``
   ``gunicorn`` or ``uwsgi``: ``workers``/``processes``, ``threads``, ``worker_class``) — one
   log per instance, so distinct logs count instances when the configuration does not say;
3. the database's settings: ``max_connections`` and ``superuser_reserved_connections`` from
   ``pg_settings``, ``max_connections`` from MySQL's ``SHOW VARIABLES`` (``server_status``
   rows of kind ``variable``).

:func:`deployment_facts` returns a plain dict (the keys of ``audit.yaml``'s section) with a
``sources`` dict naming where each fact came from, so every number in a plan can say why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["APP_SERVERS", "deployment_facts"]

#: application servers whose start-up settings the loaders read
APP_SERVERS = ("gunicorn", "uwsgi")

# setting name → deployment key
_APP_KEYS = {
    "workers": "web_workers",
    "processes": "web_workers",
    "threads": "threads_per_worker",
    "worker_class": "worker_class",
}


#: where MySQL and MariaDB settings come from (the loaders' ``source`` of such rows)
MYSQL_VARIABLES = "SHOW GLOBAL VARIABLES"


def _settings_source(settings: pd.DataFrame, name: str) -> str:
    """pg_settings, or MySQL's SHOW GLOBAL VARIABLES when the row says it came from there."""
    if "source" in settings:
        src = settings.loc[settings["name"] == name, "source"].dropna().astype(str)
        if len(src) and src.iloc[-1].startswith(MYSQL_VARIABLES):
            return MYSQL_VARIABLES
    return "pg_settings"


def _setting(settings: pd.DataFrame, name: str, servers: tuple[str, ...] | None) -> Any:
    df = settings
    if servers is not None and "server" in df:
        df = df[df["server"].astype("string").str.lower().isin(servers)]
    rows = df[df["name"] == name]
    if len(rows) == 0:
        return None
    if "ts" in rows and rows["ts"].notna().any():
        rows = rows.sort_values("ts")
    last = rows.iloc[-1]
    value = last.get("value")
    if value is not None and pd.notna(value):
        return float(value)
    text = last.get("setting")
    return str(text) if text is not None and pd.notna(text) else None


#: how an application server's setting was learnt, most direct first (the loaders' ``source``)
_HOW = {"configuration": 0, "start-up lines": 1, "inferred from worker boots": 2}


def _app_setting(app: pd.DataFrame, name: str) -> tuple[Any, str]:
    """The latest start's value of ``name``, a stated one before one inferred from worker
    boots, and how it was learnt."""
    rows = app[app["name"] == name]
    if not len(rows) or "source" not in rows:
        return _setting(app, name, None), ""
    how = rows["source"].map(_HOW).fillna(len(_HOW))
    ts = rows["ts"] if "ts" in rows else pd.Series(pd.NaT, index=rows.index)
    rows = rows.assign(_how=how, _ts=ts).sort_values(
        ["_ts", "_how"], ascending=[False, True], na_position="last", kind="stable"
    )
    best = rows.iloc[0]
    value = best.get("value")
    if value is not None and pd.notna(value):
        return float(value), str(best["source"])
    text = best.get("setting")
    return (str(text) if text is not None and pd.notna(text) else None), str(best["source"])


def deployment_facts(
    configured: Mapping[str, Any],
    server_settings: pd.DataFrame | None = None,
    server_status: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The deployment facts with their sources (see the module docstring)."""
    facts: dict[str, Any] = dict(configured)
    sources: dict[str, str] = {k: "audit.yaml" for k in facts}
    settings = server_settings if server_settings is not None else pd.DataFrame()
    if len(settings) and "name" in settings:
        servers = (
            settings["server"].astype("string").str.lower()
            if "server" in settings
            else pd.Series(pd.NA, index=settings.index, dtype="string")
        )
        app = settings[servers.isin(APP_SERVERS).fillna(False)]
        if len(app):
            kind = str(servers[servers.isin(APP_SERVERS).fillna(False)].iloc[0])
            for name, key in _APP_KEYS.items():
                if key in facts:
                    continue
                value, how = _app_setting(app, name)
                if value is None:
                    continue
                facts[key] = int(value) if isinstance(value, float) else value
                sources[key] = f"{kind} log ({how})" if how else f"{kind} start-up log"
            if "instances" not in facts and "source_file" in app:
                files = app["source_file"].dropna().nunique()
                if files:
                    facts["instances"] = int(files)
                    sources["instances"] = f"{kind} logs (one per instance)"
            if "web_server" not in facts:
                facts["web_server"] = kind
                sources["web_server"] = f"{kind} start-up log"
        db = settings[~servers.isin(APP_SERVERS).fillna(False)]
        for name, key in (
            ("max_connections", "max_connections"),
            ("superuser_reserved_connections", "reserved_connections"),
        ):
            if key not in facts:
                value = _setting(db, name, None)
                if isinstance(value, float):
                    facts[key] = int(value)
                    sources[key] = _settings_source(db, name)
        if (
            sources.get("max_connections") == MYSQL_VARIABLES
            and "reserved_connections" not in facts
        ):
            # MySQL keeps one connection beyond max_connections for an administrator: none of
            # max_connections is reserved
            facts["reserved_connections"] = 0
            sources["reserved_connections"] = MYSQL_VARIABLES
    status = server_status if server_status is not None else pd.DataFrame()
    if "max_connections" not in facts and len(status) and "name" in status:
        rows = status[(status["name"] == "max_connections") & (status["kind"] == "variable")]
        values = pd.to_numeric(rows["value"], errors="coerce").dropna()
        if len(values):
            facts["max_connections"] = int(values.iloc[-1])
            sources["max_connections"] = MYSQL_VARIABLES
            if "reserved_connections" not in facts:
                facts["reserved_connections"] = 0  # as above: MySQL reserves none of them
                sources["reserved_connections"] = MYSQL_VARIABLES
    facts["sources"] = sources
    return facts
