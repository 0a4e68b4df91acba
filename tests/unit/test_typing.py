"""The code type-checks: `mypy settlement` with the project's configuration
(pyproject.toml), so a type error fails the suite and not only a CI step."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_reports_no_errors(tmp_path_factory: pytest.TempPathFactory,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh cache, so a clean checkout checks exactly what CI checks.
    cache_dir = tmp_path_factory.mktemp("mypy-cache")
    monkeypatch.chdir(ROOT)
    stdout, stderr, status = api.run([
        "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(cache_dir),
        "settlement",
    ])
    assert status == 0, f"mypy found errors:\n{stdout}{stderr}"
