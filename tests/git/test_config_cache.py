"""The validated configuration is reused while its files' stat is unchanged, in memory and across processes
(issue #14, point 1), and read again whenever a file changes, appears or goes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from adw import config as config_module
from adw.config import AdwConfig, load_config
from adw.errors import ConfigError

OLD = time.time_ns() - 3600 * 10**9  # an hour ago: well outside the window where a stat cannot be trusted


def write(path: Path, text: str, mtime_ns: int = OLD) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every validation of a configuration file, counted."""
    seen: list[object] = []
    validate = AdwConfig.model_validate

    def counting(data: object) -> AdwConfig:
        seen.append(data)
        return validate(data)

    monkeypatch.setattr(AdwConfig, "model_validate", counting)
    monkeypatch.setattr(config_module, "_memo", {})
    return seen


def test_an_unchanged_configuration_is_validated_once(tmp_path: Path, validations: list[object]) -> None:
    cache = tmp_path / "cache"
    write(tmp_path / ".adw.toml", "[scout]\ntop = 7\n")
    assert load_config(tmp_path, cache).scout.top == 7
    assert load_config(tmp_path, cache).scout.top == 7
    config_module._memo.clear()  # a new process: the pickle in the git dir answers
    assert load_config(tmp_path, cache).scout.top == 7
    assert len(validations) == 1


@pytest.mark.parametrize("change", ["content", "removed", "pyproject added"])
def test_a_changed_file_is_read_again(tmp_path: Path, validations: list[object], change: str) -> None:
    cache = tmp_path / "cache"
    write(tmp_path / ".adw.toml", "[scout]\ntop = 7\n")
    load_config(tmp_path, cache)
    if change == "content":  # same size, a different time
        write(tmp_path / ".adw.toml", "[scout]\ntop = 8\n", OLD + 10**9)
        expected = 8
    elif change == "removed":
        (tmp_path / ".adw.toml").unlink()
        expected = 10
    else:
        write(tmp_path / "pyproject.toml", "[tool.adw.scout]\ntop = 9\n")
        (tmp_path / ".adw.toml").unlink()
        expected = 9
    for _ in range(2):
        config_module._memo.clear()
        assert load_config(tmp_path, cache).scout.top == expected
        assert load_config(tmp_path, cache).scout.top == expected


def test_a_file_written_just_now_is_not_trusted_by_its_stat(tmp_path: Path, validations: list[object]) -> None:
    now = time.time_ns()
    write(tmp_path / ".adw.toml", "[scout]\ntop = 7\n", now)
    assert load_config(tmp_path, tmp_path / "cache").scout.top == 7
    write(tmp_path / ".adw.toml", "[scout]\ntop = 8\n", now)  # the same size and time: the stat cannot tell
    os.utime(tmp_path / ".adw.toml", ns=(now, now))
    assert load_config(tmp_path, tmp_path / "cache").scout.top == 8
    assert not (tmp_path / "cache").exists()


def test_an_invalid_change_is_an_error_and_a_broken_cache_is_ignored(tmp_path: Path,
                                                                     validations: list[object]) -> None:
    cache = tmp_path / "cache"
    write(tmp_path / ".adw.toml", "[scout]\ntop = 7\n")
    load_config(tmp_path, cache)
    write(tmp_path / ".adw.toml", "[scout]\ntop = 0\n", OLD + 10**9)
    with pytest.raises(ConfigError, match=r"scout\.top"):
        load_config(tmp_path, cache)
    write(tmp_path / ".adw.toml", "[scout]\ntop = 5\n", OLD + 2 * 10**9)
    cache.write_bytes(b"not a pickle")
    config_module._memo.clear()
    assert load_config(tmp_path, cache).scout.top == 5
