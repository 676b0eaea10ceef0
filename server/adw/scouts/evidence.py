"""The seven scouts. Each reads the shared `Context` and returns its own evidence; none depends on another.

Scores are in the context's unit (summed inverse document frequencies). Neighbour evidence (architecture,
dependencies, documentation pointing at code) is a fraction of the score of the file it was reached from,
so it can lift a file but rarely outranks a direct match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from adw.scouts.context import Context, Match
from adw.scouts.terms import Term, normalize

ANCHORS = 5  # strongest source matches whose neighbourhood is explored
_NEIGHBOUR = 0.25
_ENTRY = 0.2
_DOC_POINTER = 0.4
_TEST_OF = 0.5
_SETTINGS_VOTE = 0.2
_PHRASE = 2.0  # an identifier copied from the task counts double in commit messages too, as in the code
_ENTRY_NAMES = frozenset({"__init__", "__main__", "cli", "main", "app", "application", "wsgi", "asgi", "manage"})
_ENTRY_FUNCTIONS = frozenset({"create_app", "make_app", "main", "cli", "app", "application"})
_SETTINGS_NAMES = frozenset({"settings", "config", "conf", "configuration", "defaults", "constants", "options"})


@dataclass(frozen=True, slots=True)
class Evidence:
    index: int
    score: float
    line: int | None
    reason: str
    # The line is the file's best definition by name and signature: the report may move it to the definition
    # whose body the task is about (`Context.definition`), computed only for the files it reports.
    definition: bool = False


Scout = Callable[[Context], list[Evidence]]


def anchors(ctx: Context) -> list[Match]:
    source = [m for m in ctx.matches.values() if ctx.tree.kinds[m.index] == "source" and m.score > 0]
    return sorted(source, key=lambda m: (-m.score, m.index))[:ANCHORS]


def _describe(ctx: Context, match: Match) -> tuple[int | None, str]:
    if match.symbol is not None and match.definitions >= match.path:
        symbol = match.symbol
        return (
            symbol.line,
            f"{symbol.kind} `{symbol.name}` matches {_words(ctx, symbol.name_words + symbol.words)}",
        )
    words = ", ".join(match.matched) or "the task"
    if match.path > match.content:
        return None, f"path matches {_words(ctx, ctx.tree.path_words[match.index])}"
    return None, f"mentions {words}"


def _words(ctx: Context, padded: str) -> str:
    found = [t for t in ctx.query.terms if t.needle in padded]
    return ", ".join(sorted({w for t in found for w in t.words})) or "the task"


def implementation(ctx: Context) -> list[Evidence]:
    """Definitions (and failing those, text and paths) of source files that match the task."""
    evidence = []
    for match in ctx.matches.values():
        if ctx.tree.kinds[match.index] != "source" or match.score <= 0:
            continue
        line, reason = _describe(ctx, match)
        evidence.append(Evidence(match.index, match.score, line, reason, definition=line is not None))
    return evidence


def tests(ctx: Context) -> list[Evidence]:
    """Test files that mention the terms, import the strongest matches or are named after them."""
    tree = ctx.tree
    found: dict[int, Evidence] = {}
    for match in ctx.matches.values():
        if tree.kinds[match.index] == "test" and match.score > 0:
            line, reason = _describe(ctx, match)
            found[match.index] = Evidence(match.index, match.score, line, reason)
    targets = {a.index: a for a in anchors(ctx)}
    for target in targets.values():
        target_stem = tree.stem_words[target.index].strip()
        named = set(tree.test_stems.find(f" {target_stem} ")) if len(target_stem) > 2 else set()
        importers = {i for i in ctx.matches if tree.kinds[i] == "test" and _imports(ctx, i, target.index)}
        for index in sorted(named | importers):
            imports = index in importers
            path = tree.corpus.paths[target.index]
            score = found[index].score if index in found else 0.0
            score += _TEST_OF * target.score
            line = found[index].line if index in found else None
            how = "imports it" if imports else "named after it"
            found[index] = Evidence(index, score, line, f"tests {path} ({how})")
    return list(found.values())


def configuration(ctx: Context) -> list[Evidence]:
    """Configuration files and settings modules whose keys or text match."""
    tree = ctx.tree
    evidence = []
    for match in ctx.matches.values():
        kind = tree.kinds[match.index]
        settings = kind == "source" and PurePosixPath(tree.corpus.paths[match.index]).stem in _SETTINGS_NAMES
        if (kind != "config" and not settings) or match.score <= 0:
            continue
        keys = [s for s in tree.facts(match.index).symbols if s.kind in ("key", "constant", "attribute")]
        best = max(keys, key=ctx.symbol_score, default=None)
        # A settings module is source code the implementation scout already scored: only add a vote.
        score = match.score * (_SETTINGS_VOTE if settings else 1.0)
        if best is not None and ctx.symbol_score(best) > 0:
            reason = f"key `{best.name}` matches {_words(ctx, best.name_words)}"
            evidence.append(Evidence(match.index, score, best.line, reason))
        else:
            evidence.append(Evidence(match.index, score, None, f"mentions {', '.join(match.matched)}"))
    return evidence


def architecture(ctx: Context) -> list[Evidence]:
    """Entry points and package exports near the strongest matches: `__init__`, CLIs, app factories."""
    tree = ctx.tree
    paths = tree.corpus.paths
    by_path = tree.by_path
    evidence: dict[int, Evidence] = {}

    def add(index: int, score: float, line: int | None, reason: str) -> None:
        if index not in evidence or evidence[index].score < score:
            evidence[index] = Evidence(index, score, line, reason)

    for anchor in anchors(ctx):
        parent = PurePosixPath(paths[anchor.index]).parent
        for folder in (parent, parent.parent):
            for name in _ENTRY_NAMES:
                index = by_path.get((folder / f"{name}.py").as_posix())
                if index is not None and index != anchor.index:
                    add(index, _ENTRY * anchor.score, None, f"entry point of {paths[anchor.index]}")
    for match in ctx.matches.values():
        if tree.kinds[match.index] != "source":
            continue
        for symbol in tree.facts(match.index).symbols:
            if symbol.kind == "function" and symbol.name in _ENTRY_FUNCTIONS:
                add(match.index, _ENTRY * match.score, symbol.line, f"entry point `{symbol.name}`")
    return list(evidence.values())


def dependencies(ctx: Context) -> list[Evidence]:
    """Import-graph neighbours of the strongest matches: what they import and who imports them."""
    tree = ctx.tree
    paths = tree.corpus.paths
    evidence: dict[int, Evidence] = {}
    for anchor in anchors(ctx):
        for module in tree.facts(anchor.index).imports:
            index = tree.resolve(module)
            if index is not None and index != anchor.index and tree.kinds[index] == "source":
                score = _NEIGHBOUR * anchor.score
                if index not in evidence or evidence[index].score < score:
                    evidence[index] = Evidence(index, score, None, f"imported by {paths[anchor.index]}")
        for index in ctx.matches:
            if index != anchor.index and tree.kinds[index] == "source" and _imports(ctx, index, anchor.index):
                score = _NEIGHBOUR * anchor.score
                if index not in evidence or evidence[index].score < score:
                    evidence[index] = Evidence(index, score, None, f"imports {paths[anchor.index]}")
    return list(evidence.values())


def documentation(ctx: Context) -> list[Evidence]:
    """Documents whose headings or text match, and the code symbols those documents name."""
    tree = ctx.tree
    evidence: list[Evidence] = []
    docs = sorted(
        (m for m in ctx.matches.values() if tree.kinds[m.index] == "doc" and m.score > 0),
        key=lambda m: (-m.score, m.index),
    )
    for match in docs:
        headings = [s for s in tree.facts(match.index).symbols if s.kind == "heading"]
        best = max(headings, key=ctx.symbol_score, default=None)
        if best is not None and ctx.symbol_score(best) > 0:
            evidence.append(Evidence(match.index, match.score, best.line, f"section “{best.name}”"))
        else:
            evidence.append(Evidence(match.index, match.score, None, f"mentions {', '.join(match.matched)}"))
    for match in docs[:3]:
        doc_path = tree.corpus.paths[match.index]
        for name in tree.facts(match.index).mentions:
            leaf = name.rsplit(".", 1)[-1]
            if len(leaf) < 3 or ctx.name_score(leaf) <= 0:
                continue
            for index, line in _definitions_of(ctx, leaf):
                evidence.append(Evidence(index, _DOC_POINTER * match.score, line, f"`{leaf}` is named in {doc_path}"))
    return evidence


def history(ctx: Context) -> list[Evidence]:
    """Files changed by past commits whose messages match the task, and files that changed beside them.

    A file's vote (history.py, about one for a file several well matching commits changed) saturates at the
    task's weight in the corpus, the score of a file whose content matches every term once.
    """
    tree = ctx.tree
    weights = {term: _PHRASE for term in ctx.query.terms if term.phrase}
    votes = tree.history.votes(ctx.query.terms, weights, tree.by_path)
    if not votes:
        return []
    weight = sum(ctx.idf.values())
    evidence = []
    for path, vote in votes.items():
        index = tree.by_path[path]
        if tree.kinds[index] == "other":
            continue
        score = weight * vote.score / (1 + vote.score) * tree.priors[index]
        if vote.best is None:
            reason = f"changed together with {vote.partner}"
        else:
            many = f" and {vote.commits - 1} more" if vote.commits > 1 else ""
            reason = f"changed by {vote.best.sha[:8]} “{vote.best.subject}”{many}"
        evidence.append(Evidence(index, score, None, reason))
    return evidence


def _definitions_of(ctx: Context, name: str) -> list[tuple[int, int]]:
    """Source files defining `name` (found through the corpus, so not limited to the candidates)."""
    corpus = ctx.tree.corpus
    found = []
    for keyword in ("def", "class"):
        hits = corpus.find(Term(f"{keyword} {normalize(name)} ", (name,)))
        for index in hits.counts:
            if ctx.tree.kinds[index] == "source":
                offsets = corpus.offsets_in(hits, index)
                found.append((index, corpus.line_of(index, offsets[0])))
    return found[:5]


def _imports(ctx: Context, importer: int, imported: int) -> bool:
    tree = ctx.tree
    return any(tree.resolve(module) == imported for module in tree.facts(importer).imports)


SCOUTS: dict[str, Scout] = {
    "implementation": implementation,
    "tests": tests,
    "configuration": configuration,
    "architecture": architecture,
    "dependencies": dependencies,
    "documentation": documentation,
    "history": history,
}
