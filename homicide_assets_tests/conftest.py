"""Shared fixtures: a throwaway data directory, a pseudonym key, a Dagster home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from homicide_assets.lib.settings import DataDir

TEST_KEY = "test-pseudonym-key-0123456789abcdef"


@pytest.fixture
def key() -> bytes:
    return TEST_KEY.encode()


@pytest.fixture
def data_dir(tmp_path: Path) -> DataDir:
    return DataDir(tmp_path / "data").ensure()


@pytest.fixture
def platform_env(data_dir: DataDir, monkeypatch: pytest.MonkeyPatch) -> DataDir:
    """Point the platform at ``data_dir`` with a test key and its own DAGSTER_HOME."""
    monkeypatch.setenv("HOMICIDE_DATA_DIR", str(data_dir.root))
    monkeypatch.setenv("HOMICIDE_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.delenv("HOMICIDE_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.delenv("HOMICIDE_DATABASE_URL", raising=False)
    home = data_dir.root / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return data_dir


def pytest_configure(config):
    # Set before homicide_assets.definitions is imported, so its resources read these
    # variables at run time (EnvVar) and each test's monkeypatched values take effect.
    import tempfile

    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HOMICIDE_DATA_DIR", tempfile.mkdtemp(prefix="homicide_session_"))
    os.environ.setdefault("HOMICIDE_PSEUDONYM_KEY", TEST_KEY)
    # A developer's shell may carry the platform's own settings (``make``'s key_env.sh exports
    # the local key file): definitions read them at import as run-time variables, which the
    # fixtures then remove, so a build test would fail for want of them. Tests bring their own.
    for name in ("HOMICIDE_PSEUDONYM_KEY_FILE", "HOMICIDE_DATABASE_URL"):
        os.environ.pop(name, None)
