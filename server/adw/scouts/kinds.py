"""Which group a file is reported in: source, test, doc or config (anything else is not reported)."""

from __future__ import annotations

import re
from typing import Literal

from adw.scouts.facts import CONFIG_SUFFIXES, DOC_SUFFIXES

Kind = Literal["source", "test", "doc", "config", "other"]

_SOURCE_TEXT = """
    .py .pyi .pyx .js .jsx .mjs .cjs .ts .tsx .vue .svelte .go .rs .java .kt .kts .scala .c .h .cc .cpp .cxx
    .hpp .hh .cs .rb .php .swift .m .mm .lua .pl .pm .sh .bash .zsh .ex .exs .erl .hs .ml .clj .dart .r .jl
    .sql .html .jinja .j2 .css .scss
"""
SOURCE_SUFFIXES = frozenset(_SOURCE_TEXT.split())
_TEST_DIRS = frozenset({"tests", "test", "testing", "__tests__", "spec", "specs", "t"})
_TEST_NAME = re.compile(r"^(test_.*|.*_tests?|.*[._-](test|spec)|conftest)\.[a-z0-9]+$", re.IGNORECASE)
_DOC_NAME = re.compile(r"^(readme|changelog|changes|history|news|contributing|authors|upgrading|migration)", re.I)
_DOC_DIRS = frozenset({"docs", "doc", "documentation", "changelog.d", "changes", "newsfragments"})
_CONFIG_NAMES = frozenset(
    {"setup.cfg", "tox.ini", "pyproject.toml", "dockerfile", "makefile", "procfile", "manifest.in",
     "requirements.txt", ".editorconfig", ".pre-commit-config.yaml", "noxfile.py", "setup.py"}
)  # fmt: skip


def split_path(path: str) -> tuple[list[str], str, str]:
    """(folders, file name, suffix), lower-cased; string operations, as this runs for every file of a tree."""
    *parts, name = path.lower().split("/")
    dot = name.rfind(".")
    return parts, name, name[dot:] if dot > 0 else ""


def kind_of(path: str) -> Kind:
    parts, name, suffix = split_path(path)
    sphinx_conf = name == "conf.py" and parts[:1] in (["docs"], ["doc"])
    if name in _CONFIG_NAMES or sphinx_conf or name.startswith((".env", "requirements")) or suffix in CONFIG_SUFFIXES:
        return "config"
    if suffix in SOURCE_SUFFIXES and (_TEST_NAME.match(name) or any(part in _TEST_DIRS for part in parts)):
        return "test"
    if suffix in DOC_SUFFIXES or _DOC_NAME.match(name) or (parts and parts[0] in _DOC_DIRS and suffix != ".py"):
        return "doc"
    if suffix in SOURCE_SUFFIXES:
        return "source"
    return "other"
