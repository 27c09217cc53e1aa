"""Shared fixtures: every test gets its own store and a clean environment."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from core.store import Store

# A fixed clock for everything: 2025-06-30 12:00 UTC.
NOW = 1751284800
AS_OF = date(2025, 6, 29)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """Keep the developer's own store, identity and terminal out of the tests."""
    for name in ("TIERDESK_DB", "TIERDESK_USER", "NO_COLOR", "TZ"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("TIERDESK_NO_PROGRESS", "1")
    monkeypatch.setenv("COLUMNS", "120")


def make_store(path: Path, *, config: str = "", timezone: str = "UTC", owner: str = "owner") -> Store:
    """A fresh store whose config trusts TIERDESK_USER, plus any extra config text."""
    store = Store.create(path, owner=owner, now=NOW, timezone=timezone)
    text = f'timezone = "{timezone}"\ntrust_env_user = true\n{config}'
    store.config_path.write_text(text, encoding="utf-8")
    store.reload_config()
    return store


@pytest.fixture
def store_path(tmp_path) -> Path:
    return tmp_path / "shop.db"


@pytest.fixture
def store(store_path):
    store = make_store(store_path)
    yield store
    store.close()


@pytest.fixture
def as_user(monkeypatch):
    """Act as a named user (the store's config trusts TIERDESK_USER)."""

    def switch(login: str) -> None:
        monkeypatch.setenv("TIERDESK_USER", login)

    switch("owner")
    return switch


def pytest_configure(config):
    os.environ.setdefault("TIERDESK_NO_PROGRESS", "1")
