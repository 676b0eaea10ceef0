"""Scout results as links: a Markdown report whose every result is a document link, and showDocument."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from lsprotocol import types
from pygls.uris import to_fs_path

from adw.git.refs import SCOUT_REPORT
from adw.lsp.server import AdwServer, uri_of
from adw.scouts import OUTPUT_FILE
from adw.scouts.models import ScoutLocation, ScoutReport

# `path/to/file.py:42` in backticks: the form write_report uses, so links are found exactly where it put them.
_LINK = re.compile(r"`([^`\s]+):(\d+)`")
# The name a definition line introduces (Python, JS/TS, Go, Rust, C-like declarations of these forms).
_DEFINED = re.compile(
    r"^\s*(?:(?:export|default|pub|public|private|static|async|abstract)\s+)*"
    r"(?:def|class|function|fn|func|interface|type|struct|enum|trait|const|let|var)\s+\*?([A-Za-z_$][\w$]*)"
)


def _name_range(text: str, line: int) -> types.Range:
    """The symbol a 1-based line defines, else its first word: a Location must span a word, or VS Code's
    References view drops it (a column-0 location on an indented line never showed)."""
    lines = text.splitlines()
    content = lines[line - 1] if 0 < line <= len(lines) else ""
    defined = _DEFINED.match(content)
    word = re.search(r"[\w$]+", content)
    start, end = (defined.span(1) if defined else word.span() if word else (0, 0))
    return types.Range(start=types.Position(line=max(line - 1, 0), character=start),
                       end=types.Position(line=max(line - 1, 0), character=end))


async def locations_of(root: Path, found: list[ScoutLocation]) -> list[types.Location]:
    """Editor locations of scout results, each spanning the symbol on its line."""

    def read(path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    texts = await asyncio.to_thread(lambda: [read(root / loc.path) for loc in found])
    return [types.Location(uri=uri_of(root / loc.path), range=_name_range(text, loc.line))
            for loc, text in zip(found, texts, strict=True)]


def render(report: ScoutReport) -> str:
    lines = [f"# Scout: {report.task}", "", f"{report.count} source file(s), method {report.method}", ""]
    for location in report.locations:
        lines.append(f"- `{location.path}:{location.line}` — {location.reason} ({', '.join(location.scouts)})")
    return "\n".join(lines) + "\n"


async def write_report(root: Path, report: ScoutReport) -> Path:
    path = root / OUTPUT_FILE.parent / SCOUT_REPORT
    text = render(report)

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    await asyncio.to_thread(write)
    return path


async def show_best(ls: AdwServer, locations: list[types.Location]) -> bool:
    if not locations or not ls.supports("window.show_document.support"):
        return False
    best = locations[0]
    result = await ls.window_show_document_async(
        types.ShowDocumentParams(uri=best.uri, selection=best.range, take_focus=True)
    )
    return bool(result.success)


def register(server: AdwServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_LINK)
    def document_links(ls: AdwServer, params: types.DocumentLinkParams) -> list[types.DocumentLink]:
        uri = params.text_document.uri
        fs = to_fs_path(uri)
        if fs is None or not fs.endswith(".md"):
            return []
        document = ls.workspace.get_text_document(uri)
        # The report lives in <worktree>/scout_outputs/, and its paths are relative to that worktree.
        base = Path(fs).parent.parent if Path(fs).parent.name == OUTPUT_FILE.parent.name else Path(fs).parent
        links = []
        for number, line in enumerate(document.lines):
            for match in _LINK.finditer(line):
                target = (base / match.group(1)).resolve()
                if not target.is_file():
                    continue
                links.append(
                    types.DocumentLink(
                        range=types.Range(
                            start=types.Position(number, match.start(1)), end=types.Position(number, match.end(2))
                        ),
                        target=f"{uri_of(target)}#L{match.group(2)}",
                        tooltip=f"Open {match.group(1)} at line {match.group(2)}",
                    )
                )
        return links
