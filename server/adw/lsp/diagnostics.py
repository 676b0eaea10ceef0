"""Diagnostics (source "adw"): failed tests, review findings and predicted merge conflicts.

Each producer owns a key (a workflow's phase, or a worktree's merge preview); its next report replaces the
last, and the client gets, per file, the union of every key's diagnostics. Publishing [] clears a file.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from lsprotocol import types

from adw.lsp.server import AdwServer, uri_of
from adw.workflow.models import Finding

_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
}
def replace(ls: AdwServer, key: str, by_uri: dict[str, list[types.Diagnostic]]) -> None:
    store = ls.diagnostics
    touched = set(store.get(key, {})) | set(by_uri)
    store[key] = by_uri
    for uri in touched:
        merged = [d for diagnostics in store.values() for d in diagnostics.get(uri, [])]
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=merged))


def publish_findings(ls: AdwServer, key: str, root: Path, findings: list[Finding]) -> None:
    """Findings of one phase (pytest failures, ruff findings, …) at their file and line."""
    by_uri: dict[str, list[types.Diagnostic]] = defaultdict(list)
    for finding in findings:
        line = max((finding.line or 1) - 1, 0)
        column = max((finding.column or 1) - 1, 0)
        by_uri[uri_of(root / finding.path)].append(
            types.Diagnostic(
                range=types.Range(start=types.Position(line, column), end=types.Position(line + 1, 0)),
                message=finding.message,
                severity=_SEVERITY.get(str(finding.severity), types.DiagnosticSeverity.Warning),
                source="adw",
                code=finding.code or finding.source,
            )
        )
    replace(ls, key, dict(by_uri))


def publish_conflicts(ls: AdwServer, worktree: Path, conflicts: list[str], target: str) -> None:
    top = types.Range(start=types.Position(0, 0), end=types.Position(0, 0))
    by_uri = {
        uri_of(worktree / path): [
            types.Diagnostic(
                range=top, message=f"merging into {target} would conflict in this file",
                severity=types.DiagnosticSeverity.Warning, source="adw", code="merge-conflict",
            )
        ]
        for path in conflicts
    }
    replace(ls, f"conflicts:{worktree}", by_uri)


def clear_under(ls: AdwServer, folder: Path) -> None:
    """Clear every diagnostic of files under `folder` (a removed worktree)."""
    prefix = uri_of(folder).rstrip("/") + "/"
    for key, by_uri in list(ls.diagnostics.items()):
        kept = {uri: diags for uri, diags in by_uri.items() if not uri.startswith(prefix)}
        if kept != by_uri:
            cleared: dict[str, list[types.Diagnostic]] = {uri: [] for uri in by_uri if uri.startswith(prefix)}
            replace(ls, key, {**kept, **cleared})
            ls.diagnostics[key] = kept
