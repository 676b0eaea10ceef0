"""The shared first stage every scout builds on: term statistics, BM25, path and definition matches.

Scores are sums of inverse document frequencies, so content, path and definition evidence are in the same
unit and can be added without per-query normalisation.
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import InitVar, dataclass, field
from functools import cached_property
from pathlib import Path

from adw.scouts.corpus import TABLE, Corpus, TermHits, lines_with, read_text
from adw.scouts.facts import Facts, Symbol, extract, module_name, symbol
from adw.scouts.history import History
from adw.scouts.kinds import Folder, Kind, kind_in, split_path
from adw.scouts.synonyms import learn
from adw.scouts.terms import Query, Term

CANDIDATES = 80  # files analysed in depth per query (the rest is ranked by content and path alone)
_K1 = 1.2
_B = 0.75
_PHRASE_BOOST = 2.0
# How much each kind of direct evidence counts, tuned on the tuning half of benchmarks/scout_cases.
_CONTENT = 1.0
_PATH = 1.0
_DEFINITIONS = 1.0
_DIRECTORY = 0.3  # a term in a folder name, relative to one in the file's own name
_OTHER_SYMBOLS = 0.2  # further matching definitions, relative to the best one
_SIGNATURE_WEIGHT = 0.3
_CLASS_WEIGHT = 0.7
_NAMED = 2.0  # a definition whose whole name the task copied (`encode_host`, `Request`), relative to a partial one
_FACTS_CACHE = 50_000
_PERIPHERAL = 0.5
# Synonyms learned from definition names (synonyms.py): a partner counts at most this share of the query term
# it stands in for (times their Dice coefficient), so an expansion never outranks a direct match.
_SYNONYM = 0.3
_MAX_SYNONYMS = 3  # partners searched per query, strongest first: each new one is a lookup (or scan) of the corpus
# Only a query whose best direct match holds less than this share of its weight is expanded: where the words
# match, expansions only add noise (expanding every query cost 2-4 tuning cases at rank 1; gated, none).
_EXPAND_BELOW = 0.6
_LEARN_FROM = CANDIDATES  # best direct matches whose definition names teach the synonyms
# Files changed often lately are where work is happening; up to +50% for the most changed one.
_CHURN = 0.5
_BODY = 0.5  # a term in a definition's body, relative to one in its name, when choosing the line to open
_CODE_KINDS = frozenset({"function", "method", "class"})
_PERIPHERAL_DIRS = frozenset(
    {"docs", "doc", "docs_src", "examples", "example", "samples", "scripts", "tools", "benchmarks", "bench",
     "performance", "typing-examples", "contrib", "demo", "demos", "tutorial"}
)  # fmt: skip


class FactsCache:
    """Facts by (path, content signature); bounded, shared by every tree and query of the process."""

    def __init__(self, limit: int = _FACTS_CACHE) -> None:
        self._items: OrderedDict[tuple[str, str], Facts] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()  # scouts of several queries share it from worker threads

    def get(self, root: Path, path: str, signature: str) -> Facts:
        key = (path, signature)
        with self._lock:
            facts = self._items.get(key)
            if facts is not None:
                self._items.move_to_end(key)
                return facts
        data = read_text(root, path)
        facts = extract(path, data.decode("utf-8")) if data is not None else Facts((), (), ())
        with self._lock:
            self._items[key] = facts
            if len(self._items) > self._limit:
                self._items.popitem(last=False)
        return facts


def prior(top_folder: str, suffix: str) -> float:
    """Library code is what tasks change; examples, scripts, benchmarks and type stubs echo it."""
    weight = _PERIPHERAL if top_folder in _PERIPHERAL_DIRS else 1.0
    return weight * _PERIPHERAL if suffix == ".pyi" else weight


# What a path alone says: (kind, normalised path, normalised file name without suffix (both padded with
# spaces), prior). Plain tuples: 20,000 of them are made on a first query.
PathInfo = tuple[Kind, str, str, float]


def path_infos(paths: list[str]) -> Iterator[PathInfo]:
    """The infos of many paths at once: each folder is read once, and one `translate` normalises all."""
    folders: dict[str, Folder] = {}
    splits: list[tuple[Folder, str, str]] = []
    for path in paths:
        folder_path, name, suffix = split_path(path)
        folder = folders.get(folder_path)
        if folder is None:
            folder = folders[folder_path] = Folder.of(folder_path)
        splits.append((folder, name, suffix))
    kinds = [kind_in(*split) for split in splits]
    stems = [name[: len(name) - len(suffix)] if suffix else name for _, name, suffix in splits]
    priors = [prior(folder.top, suffix) for folder, _, suffix in splits]
    return zip(kinds, _padded(paths), _padded(stems), priors, strict=True)


# TABLE, but a newline in a path is a space, and NUL (which no path holds) is kept: it separates the paths.
_PATH_TABLE = b"\0" + TABLE[1:10] + b" " + TABLE[11:]


def _padded(texts: list[str]) -> list[str]:
    """`normalize` for paths, at C speed, each padded with spaces: non-alphanumerics become spaces."""
    joined = "\0".join(texts).encode("utf-8", "replace").translate(_PATH_TABLE).decode("ascii", "replace")
    return [f" {text} " for text in joined.split("\0")] if texts else []


class TextIndex:
    """Short padded strings (paths, file names) joined into one, so a needle is found in all with `str.find`
    at C speed instead of a Python loop over 20,000 strings."""

    __slots__ = ("_ids", "_starts", "_text")

    def __init__(self, texts: list[str], ids: Iterable[int]) -> None:
        self._text = "\n".join(texts)  # no needle contains a newline, so none spans two entries
        self._ids = list(ids)
        self._starts = list(itertools.accumulate((len(t) + 1 for t in texts[:-1]), initial=0))

    def find(self, needle: str) -> list[int]:
        """Ids of the entries containing `needle`, each once, in order."""
        found: list[int] = []
        text, starts = self._text, self._starts
        at = text.find(needle)
        while at >= 0:
            entry = bisect.bisect_right(starts, at) - 1
            found.append(self._ids[entry])
            following = entry + 1
            if following >= len(starts):
                break
            at = text.find(needle, starts[following])
        return found


@dataclass(slots=True)
class Tree:
    """A corpus plus what is derived from its paths alone; rebuilt only when the corpus changes."""

    root: Path
    corpus: Corpus
    facts_cache: FactsCache
    history: History = field(default_factory=History.empty)  # the commits before HEAD
    # The tree this one replaces: what its paths said is reused (all of it when the paths are the same).
    previous: InitVar[Tree | None] = None
    paths: dict[str, PathInfo] = field(init=False)  # memo, shared along the chain of trees
    kinds: list[Kind] = field(init=False)
    path_words: list[str] = field(init=False)  # normalised path, padded with spaces
    stem_words: list[str] = field(init=False)  # normalised file name without suffix, padded
    priors: list[float] = field(init=False)
    tests: list[int] = field(init=False)
    average_length: float = field(init=False)
    path_index: TextIndex = field(init=False)  # every `path_words`, searchable in one `str.find` pass
    test_stems: TextIndex = field(init=False)  # `stem_words` of the test files
    _modules: dict[str, list[str]] | None = None  # see `modules`
    _resolved: dict[str, int | None] = field(default_factory=dict)  # module -> file, memoised by `resolve`
    _by_path: dict[str, int] | None = None

    def __post_init__(self, previous: Tree | None) -> None:
        paths = self.corpus.paths
        self.paths = memo = previous.paths if previous is not None else {}
        unknown = [path for path in paths if path not in memo]
        memo.update(zip(unknown, path_infos(unknown), strict=True))
        infos = [memo[path] for path in paths]
        if previous is not None and previous.corpus.paths is paths:  # only contents changed (see `Corpus.updated`)
            self.kinds, self.path_words, self.stem_words = previous.kinds, previous.path_words, previous.stem_words
            self.tests, self.path_index, self.test_stems = previous.tests, previous.path_index, previous.test_stems
            self._modules, self._by_path, self._resolved = previous._modules, previous._by_path, previous._resolved
        else:
            self.kinds = [info[0] for info in infos]
            self.path_words = [info[1] for info in infos]
            self.stem_words = [info[2] for info in infos]
            self.tests = [index for index, kind in enumerate(self.kinds) if kind == "test"]
            self.path_index = TextIndex(self.path_words, range(len(paths)))
            self.test_stems = TextIndex([self.stem_words[i] for i in self.tests], self.tests)
        self.priors = priors = [info[3] for info in infos]
        churn = self.history.churn  # path -> recent commits that touched it
        most = math.log1p(max(churn.values(), default=0)) or 1.0
        for path, commits in churn.items():  # up to +50% for the most changed file
            index = self.by_path.get(path)
            if index is not None:
                priors[index] *= 1 + _CHURN * math.log1p(commits) / most
        total = self.corpus.starts[-1]
        self.average_length = total / len(self.corpus) if len(self.corpus) else 1.0

    def facts(self, index: int) -> Facts:
        return self.facts_cache.get(self.root, self.corpus.paths[index], self.corpus.signatures[index])

    @property
    def by_path(self) -> dict[str, int]:
        if self._by_path is None:
            self._by_path = {path: i for i, path in enumerate(self.corpus.paths)}
        return self._by_path

    @property
    def modules(self) -> dict[str, list[str]]:
        """The last part of a module's dotted name -> the Python files that may define it, in path order.

        `pkg/sub/mod.py` is listed under "mod" and `pkg/sub/__init__.py` under "sub"; `resolve` checks the
        rest of the name. ~10 ms on 20,000 files: cheaper than mapping every suffix of every dotted name.
        """
        if self._modules is None:
            modules: dict[str, list[str]] = {}
            for path in self.corpus.paths:
                if path.endswith(".py"):
                    slash = path.rfind("/")
                    name = path[slash + 1 : -3]
                    if name == "__init__":
                        name = path[path.rfind("/", 0, slash) + 1 : slash] if slash > 0 else ""
                    modules.setdefault(name, []).append(path)
            self._modules = modules
        return self._modules

    def resolve(self, module: str) -> int | None:
        """The file a dotted import refers to (`a.b.name` falls back to module `a.b`), under any prefix of its
        path (so `src/` layouts resolve too); where several files fit, the first in path order."""
        found = self._resolved.get(module, -1)
        if found == -1:
            path = self._module_path(module)
            if path is None and "." in module:
                path = self._module_path(module.rsplit(".", 1)[0])
            found = self._resolved[module] = self.by_path[path] if path is not None else None
        return found

    def _module_path(self, module: str) -> str | None:
        for path in self.modules.get(module.rsplit(".", 1)[-1], ()):
            dotted = module_name(path)
            if dotted == module or dotted.endswith(f".{module}"):
                return path
        return None


@dataclass(frozen=True, slots=True)
class Match:
    """How one file matches the query before any neighbour evidence."""

    index: int
    content: float
    path: float
    definitions: float
    symbol: Symbol | None
    matched: tuple[str, ...]  # query words found, for the reason

    prior: float = 1.0

    @property
    def score(self) -> float:
        return (_CONTENT * self.content + _PATH * self.path + _DEFINITIONS * self.definitions) * self.prior


class Context:
    """Everything the seven scouts share for one query on one tree."""

    def __init__(self, tree: Tree, query: Query) -> None:
        self.tree = tree
        corpus = tree.corpus
        # A compound the code writes as one word (`samesite`, `hostname`) stands for its parts there.
        compounds = corpus.find_all(compound.term for compound in query.compounds)
        self.query = query = query.joined(c for c in query.compounds if compounds[c.term].counts)
        self.hits: dict[Term, TermHits] = corpus.find_all(query.terms)
        count = max(len(corpus), 1)
        self.idf = {
            term: math.log(1 + (count - len(hits.counts) + 0.5) / (len(hits.counts) + 0.5))
            * (_PHRASE_BOOST if term.phrase else 1.0)
            for term, hits in self.hits.items()
        }
        self.content = self._bm25(self.hits, self.idf)
        self.path = self._path_scores()
        self.synonyms: dict[Term, float] = {}  # learned partner -> its weight, set with `candidates`

    def _bm25(self, found: dict[Term, TermHits], weights: dict[Term, float]) -> dict[int, float]:
        scores: dict[int, float] = {}
        corpus, average = self.tree.corpus, self.tree.average_length
        for term, hits in found.items():
            idf = weights[term]
            for index, tf in hits.counts.items():
                norm = _K1 * (1 - _B + _B * corpus.length(index) / average)
                scores[index] = scores.get(index, 0.0) + idf * tf * (_K1 + 1) / (tf + norm)
        return scores

    def _path_scores(self) -> dict[int, float]:
        scores: dict[int, float] = {}
        stems = self.tree.stem_words
        for term in self.query.terms:
            needle = term.needle
            idf = self.idf[term]
            for index in self.tree.path_index.find(needle):
                in_stem = needle in stems[index]
                scores[index] = scores.get(index, 0.0) + idf * (1.0 if in_stem else _DIRECTORY)
        return scores

    @cached_property
    def candidates(self) -> list[int]:
        """The files worth analysing in depth: best by content and path, reported kinds only.

        The definition names of the files the query reaches directly teach its synonyms (`_expand`); their
        matches are added to the content scores at a low weight before the final choice.
        """
        self._expand(self._ranked()[:_LEARN_FROM])
        return self._ranked()[:CANDIDATES]

    def _ranked(self) -> list[int]:
        pool = set(self.content) | set(self.path)
        kinds = self.tree.kinds
        return sorted(
            (i for i in pool if kinds[i] != "other"),
            key=lambda i: (-(self.content.get(i, 0.0) + self.path.get(i, 0.0)), i),
        )

    def _expand(self, reached: list[int]) -> None:
        """Learn partners of the query terms from the names defined in `reached`; score their matches.

        Only when the best direct match is weak (`_EXPAND_BELOW`), i.e. the task's words and the code's differ.
        """
        if not reached:
            return
        top, total = reached[0], sum(self.idf.values())
        if sum(idf for term, idf in self.idf.items() if top in self.hits[term].counts) >= _EXPAND_BELOW * total:
            return
        learned = learn((s for index in reached for s in self.tree.facts(index).symbols), self.query.terms)
        weights: dict[str, float] = {}
        for term, partners in learned.items():
            for partner, dice in partners:
                weight = _SYNONYM * dice * self.idf[term]
                weights[partner] = max(weights.get(partner, 0.0), weight)
        strongest = sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:_MAX_SYNONYMS]
        if not strongest:
            return
        terms = {Term(partner, (partner,)): weight for partner, weight in strongest}
        found = self.tree.corpus.find_all(terms)
        count = max(len(self.tree.corpus), 1)
        for term, hits in found.items():
            own = math.log(1 + (count - len(hits.counts) + 0.5) / (len(hits.counts) + 0.5))
            terms[term] = min(terms[term], _SYNONYM * own)
        self.synonyms = terms
        for index, score in self._bm25(found, terms).items():
            self.content[index] = self.content.get(index, 0.0) + score

    @cached_property
    def matches(self) -> dict[int, Match]:
        return {index: self.match(index) for index in self.candidates}

    def match(self, index: int) -> Match:
        best: Symbol | None = None
        best_score = 0.0
        others = 0.0
        for candidate in self.tree.facts(index).symbols:
            score = self.symbol_score(candidate)
            if score > best_score:
                others += best_score
                best, best_score = candidate, score
            else:
                others += score
        definitions = best_score + _OTHER_SYMBOLS * min(others, 2 * best_score)
        matched = tuple(sorted({w for t in self.query.terms if t in self._present(index) for w in t.words}))
        content, path = self.content.get(index, 0.0), self.path.get(index, 0.0)
        return Match(index, content, path, definitions, best, matched, self.tree.priors[index])

    def _present(self, index: int) -> set[Term]:
        return {term for term, hits in self.hits.items() if index in hits.counts}

    def symbol_score(self, symbol: Symbol) -> float:
        """Full weight for terms in the symbol's name, less for those only in its signature or docstring.

        A class counts less than a function: it names the area, its methods the behaviour to open first.
        """
        score = 0.0
        for term in self.query.terms:
            if term.needle in symbol.name_words:
                score += self.idf[term]
            elif term.needle in symbol.words:
                score += _SIGNATURE_WEIGHT * self.idf[term]
        for term, weight in self.synonyms.items():
            if term.needle in symbol.name_words:
                score += weight
            elif term.needle in symbol.words:
                score += _SIGNATURE_WEIGHT * weight
        if symbol.name_words in self.query.names:
            score *= _NAMED
        return score * _CLASS_WEIGHT if symbol.kind == "class" else score

    def name_score(self, name: str) -> float:
        return self.symbol_score(symbol(name, "function", 1))

    def definition(self, index: int) -> tuple[int, str] | None:
        """The line and reason of the definition the task is about: by its name and signature as
        `symbol_score` rates them, plus `_BODY` of the weight of the terms its body holds (up to the next
        definition), so `--cert adhoc` opens the method that checks for "adhoc", not the command whose
        signature takes a `cert`. None when no function, method or class matches."""
        symbols = sorted((s for s in self.tree.facts(index).symbols if s.kind in _CODE_KINDS), key=lambda s: s.line)
        if not symbols:
            return None
        corpus = self.tree.corpus
        term_lines = {
            term: sorted({corpus.line_of(index, at) for at in corpus.offsets_in(hits, index)})
            for term, hits in self.hits.items()
            if index in hits.counts
        }
        best: tuple[float, Symbol, list[Term]] | None = None
        for number, candidate in enumerate(symbols):
            end = symbols[number + 1].line if number + 1 < len(symbols) else math.inf
            body = [
                t
                for t, lines in term_lines.items()
                if t.needle not in candidate.name_words
                and t.needle not in candidate.words
                and _within(lines, candidate.line, end)
            ]  # terms its name, signature or docstring hold already count in `symbol_score`
            score = self.symbol_score(candidate) + _BODY * sum(self.idf[t] for t in body)
            if score > 0 and (best is None or score > best[0]):
                best = score, candidate, body
        if best is None:
            return None
        _, found, body = best
        named = [t for t in self.query.terms if t.needle in found.name_words or t.needle in found.words]
        words = ", ".join(sorted({w for t in (*named, *body) for w in t.words}))
        return found.line, f"{found.kind} `{found.name}` matches {words}"

    def best_line(self, index: int) -> int:
        """The line where most distinct query terms meet (first such line), or 1."""
        lines = lines_with(self.tree.corpus, index, (self.hits[t] for t in self.query.terms))
        if not lines:
            return 1
        return min(lines, key=lambda line: (-lines[line], line))

    def score_of(self, index: int) -> float:
        found = self.matches.get(index)
        return found.score if found else self.content.get(index, 0.0) + self.path.get(index, 0.0)


def _within(lines: list[int], start: int, end: float) -> bool:
    """Whether any of the sorted `lines` is in [start, end)."""
    at = bisect.bisect_left(lines, start)
    return at < len(lines) and lines[at] < end
