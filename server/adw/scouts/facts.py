"""Structure of one file: its definitions, imports and (for documents) the code names it mentions.

Python is read with `ast` (exact lines, signatures, docstrings, resolved relative imports); anything else, and
Python that does not parse, with line-oriented patterns that cover most languages' definitions, Markdown and
reStructuredText headings and the keys of configuration files. Facts are computed only for the files a query
reaches and memoised by content signature, so they are shared by every later query and every worktree.
"""

from __future__ import annotations

import ast
import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from adw.scouts.terms import normalize

Kind = str  # "class", "function", "method", "attribute", "constant", "heading", "key"

_CODE_DEF = re.compile(
    r"^[ \t]*(?:export[ \t]+)?(?:pub(?:\([\w:]+\))?[ \t]+)?(?:async[ \t]+)?(?:static[ \t]+)?"
    r"(?P<kind>def|class|function|func|fn|interface|struct|enum|trait|type|module|sub)[ \t]+"
    r"(?:\([^)]*\)[ \t]*)?(?P<name>[A-Za-z_$][\w$]*)",
    re.MULTILINE,
)
_CODE_CONST = re.compile(
    r"^[ \t]*(?:export[ \t]+)?(?:const|let|var)?[ \t]*(?P<name>[A-Z][A-Z0-9_]{2,})[ \t]*[:=]", re.M
)
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(?P<name>.+?)[ \t#]*$", re.MULTILINE)
_RST_HEADING = re.compile(r"^(?P<name>[^\s].*)\n([=\-~^\"'`#*+])\2{2,}[ \t]*$", re.MULTILINE)
_MENTION = re.compile(r"`{1,2}(?::\w+:)?~?\.?([A-Za-z_][\w.]*)(?:\(\))?`{1,2}|:\w+:`~?\.?([A-Za-z_][\w.]*)")
_CONFIG_KEY = re.compile(
    r"^[ \t]*(?:\[+(?P<section>[^\]\n]+)\]+|\"(?P<json>[^\"\n]+)\"[ \t]*:"
    r"|(?:export[ \t]+)?(?P<key>[A-Za-z_][\w.\-]*)[ \t]*[:=])",
    re.MULTILINE,
)

_TYPE_KEYWORDS = frozenset({"class", "interface", "struct", "trait", "enum", "type"})
DOC_SUFFIXES = frozenset({".md", ".rst", ".txt", ".adoc", ".markdown"})
CONFIG_SUFFIXES = frozenset({".toml", ".cfg", ".ini", ".yaml", ".yml", ".json", ".conf", ".env", ".properties"})


@dataclass(frozen=True, slots=True)
class Symbol:
    name: str
    kind: Kind
    line: int
    name_words: str  # the normalised name, padded with spaces: " session cookie "
    words: str = ""  # normalised signature and first docstring line, padded likewise


def symbol(name: str, kind: Kind, line: int, extra: str = "") -> Symbol:
    return Symbol(name, kind, line, f" {normalize(name)} ", f" {normalize(extra)} " if extra else "")


@dataclass(frozen=True, slots=True)
class Facts:
    symbols: tuple[Symbol, ...]
    imports: tuple[str, ...]  # dotted modules, relative imports resolved against the file's own package
    mentions: tuple[str, ...]  # code names a document refers to


def extract(path: str, text: str) -> Facts:
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in (".py", ".pyi"):
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            pass
        else:
            return _python(path, tree)
    if suffix in DOC_SUFFIXES:
        return _document(text, suffix)
    if suffix in CONFIG_SUFFIXES or PurePosixPath(path).name.startswith(".env"):
        return Facts(_config_keys(text), (), ())
    return Facts(_code_symbols(text), (), ())


def module_name(path: str) -> str:
    """`src/pkg/sub/mod.py` -> "src.pkg.sub.mod"; `pkg/__init__.py` -> "pkg"."""
    dotted = path.rsplit(".", 1)[0].replace("/", ".")
    if dotted == "__init__" or dotted.endswith(".__init__"):
        return dotted[:-9]
    return dotted


def _python(path: str, tree: ast.Module) -> Facts:
    symbols: list[Symbol] = []
    for node in tree.body:
        symbols.extend(_python_symbols(node, method=False))
    package = module_name(path).split(".")
    if not path.endswith("__init__.py"):
        package = package[:-1]
    imports: list[str] = []
    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            imports.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if module:
                imports.append(module)
            imports.extend(f"{module}.{alias.name}" if module else alias.name for alias in node.names)
    return Facts(tuple(symbols), tuple(dict.fromkeys(imports)), ())


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement, nested ones included, without visiting expressions (imports are statements)."""
    for node in body:
        yield node
        for name in ("body", "orelse", "finalbody"):
            children = getattr(node, name, None)
            if isinstance(children, list):
                yield from _statements(children)
        for child in (*getattr(node, "handlers", ()), *getattr(node, "cases", ())):
            yield from _statements(child.body)


def _python_symbols(node: ast.stmt, method: bool) -> list[Symbol]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        arguments = node.args
        names = [a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
        doc = _first_line(ast.get_docstring(node, clean=False))
        return [symbol(node.name, "method" if method else "function", node.lineno, " ".join([*names, doc]))]
    if isinstance(node, ast.ClassDef):
        bases = [ast.unparse(base) for base in node.bases]
        doc = _first_line(ast.get_docstring(node, clean=False))
        symbols = [symbol(node.name, "class", node.lineno, " ".join([*bases, doc]))]
        for child in node.body:
            symbols.extend(_python_symbols(child, method=True))
        return symbols
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    kind = "attribute" if method else "constant"
    return [symbol(t.id, kind, node.lineno) for t in targets if isinstance(t, ast.Name)]


def _first_line(doc: str | None) -> str:
    return doc.strip().split("\n", 1)[0] if doc else ""


def _code_symbols(text: str) -> tuple[Symbol, ...]:
    line = _Lines(text)
    symbols = [
        symbol(m["name"], "class" if m["kind"] in _TYPE_KEYWORDS else "function", line(m.start("name")))
        for m in _CODE_DEF.finditer(text)
    ]
    symbols += [symbol(m["name"], "constant", line(m.start("name"))) for m in _CODE_CONST.finditer(text)]
    return tuple(sorted(symbols, key=lambda s: s.line))


def _document(text: str, suffix: str) -> Facts:
    pattern = _RST_HEADING if suffix == ".rst" else _MD_HEADING
    line = _Lines(text)
    headings = tuple(symbol(m["name"].strip(), "heading", line(m.start())) for m in pattern.finditer(text))
    mentions = {name for match in _MENTION.finditer(text) for name in match.groups() if name}
    return Facts(headings, (), tuple(sorted(mentions)))


def _config_keys(text: str) -> tuple[Symbol, ...]:
    line = _Lines(text)
    return tuple(
        symbol((match["section"] or match["json"] or match["key"]).strip(), "key", line(match.start()))
        for match in _CONFIG_KEY.finditer(text)
    )


class _Lines:
    """Offset -> 1-based line in O(log n), for files with thousands of matches."""

    def __init__(self, text: str) -> None:
        self._starts = [match.end() for match in re.finditer("\n", text)]

    def __call__(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset) + 1
