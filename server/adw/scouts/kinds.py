"""Which group a file is reported in: source, test, doc or config (anything else is not reported)."""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

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
_DOC_NAMES = ("readme", "changelog", "changes", "history", "news", "contributing", "authors", "upgrading", "migration")
_DOC_DIRS = frozenset({"docs", "doc", "documentation", "changelog.d", "changes", "newsfragments"})
_CONFIG_NAMES = frozenset(
    {"setup.cfg", "tox.ini", "pyproject.toml", "dockerfile", "makefile", "procfile", "manifest.in",
     "requirements.txt", ".editorconfig", ".pre-commit-config.yaml", "noxfile.py", "setup.py"}
)  # fmt: skip


class Folder(NamedTuple):
    """What a (lower-cased) folder path says about its files; computed once per folder of a tree."""

    top: str  # the first folder, "" at the root
    tests: bool  # some folder on the way is a test folder

    @classmethod
    def of(cls, folder: str) -> Folder:
        parts = folder.split("/") if folder else []
        return cls(parts[0] if parts else "", any(part in _TEST_DIRS for part in parts))


def split_path(path: str) -> tuple[str, str, str]:
    """(folder, file name, suffix), lower-cased; string operations, as this runs for every file of a tree."""
    folder, _, name = path.lower().rpartition("/")
    dot = name.rfind(".")
    return folder, name, name[dot:] if dot > 0 else ""


def kind_of(path: str) -> Kind:
    folder, name, suffix = split_path(path)
    return kind_in(Folder.of(folder), name, suffix)


def kind_in(folder: Folder, name: str, suffix: str) -> Kind:
    """`kind_of` for a file `name` (lower-cased, with its `suffix`) in `folder`."""
    if (
        name in _CONFIG_NAMES
        or suffix in CONFIG_SUFFIXES
        or name.startswith((".env", "requirements"))
        or (name == "conf.py" and folder.top in ("docs", "doc"))  # Sphinx's configuration
    ):
        return "config"
    # The substring tests spare most names the regular expression, which only matches names holding them.
    if suffix in SOURCE_SUFFIXES and (folder.tests or (("test" in name or "spec" in name) and _TEST_NAME.match(name))):
        return "test"
    if suffix in DOC_SUFFIXES or (folder.top in _DOC_DIRS and suffix != ".py") or name.startswith(_DOC_NAMES):
        return "doc"
    if suffix in SOURCE_SUFFIXES:
        return "source"
    return "other"
