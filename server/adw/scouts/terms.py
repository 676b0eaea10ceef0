"""From a task sentence to search terms: identifier splitting, stop words, light stemming.

Code and prose are normalised the same way (see `normalize`): lower case, every character that is not an
ASCII letter or digit becomes a space (the corpus is matched as bytes, so other scripts never match).
`set_cookie`, `SET_COOKIE` and `set-cookie` all read "set cookie", and a stem such as "secur" found as a
substring also matches `secure`, `security` and `isSecure`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_QUOTED = re.compile(r"`([A-Za-z_][A-Za-z0-9_.]*)")  # the name a `code span` starts with
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*[A-Za-z0-9]")

# English function words plus the verbs tasks start with; they say nothing about *where* the change goes.
_STOP_TEXT = """
    a an the and or nor not no yes is are was were be been being am to of in on at by for from with without
    as into onto over under via per it its this that these those there here when whenever while if then than
    so but do does did done doing can cannot could should would will shall may might must has have had having
    i we you he she they me us our your my his her their them what which who whom whose why how where also
    only just very too more most less least some any all each every other another such same own both either
    neither again further once instead still yet even ever else about above below between after before
    during through up down out off until against among because since though although unless whether like
    fix fixes fixed fixing bug bugs issue issues add adds added adding allow allows allowed make makes
    made making use uses used using support supports supported supporting properly correctly correct
    instead new now s t gh pr re via e g eg ie etc don doesn isn wasn aren won can't work works working
    change changes changed changing update updates updated updating improve improves improved improvement
    handle handles handled handling ensure ensures remove removes removed removing
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())

_SUFFIXES = (
    "izations", "ization", "ations", "ation", "ements", "ement", "ities", "ity", "ings", "ing", "ers",
    "ied", "ed", "es", "er", "ly", "s", "e",
)  # fmt: skip
_MIN_STEM = 4


def normalize(text: str) -> str:
    """The form both the corpus and the terms are matched in (see the module docstring)."""
    return " ".join(_WORD.findall(text)).lower()


def split_identifier(token: str) -> list[str]:
    """`parseHTTPResponse_v2` -> ["parse", "http", "response", "v", "2"]."""
    parts: list[str] = []
    for chunk in re.split(r"[^A-Za-z0-9]+", token):
        parts.extend(part.lower() for part in _CAMEL.findall(chunk) or ([chunk] if chunk else []))
    return parts


def stem(word: str) -> str:
    """Strip one common English suffix, keeping at least four characters, so substrings match variants."""
    if len(word) <= _MIN_STEM:
        return word
    if word.endswith("ies") and len(word) - 3 >= _MIN_STEM:  # cookies, policies: "cook", "polic"
        return word[:-3]
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True, slots=True)
class Term:
    """One thing to look for, normalised; a `phrase` is a whole identifier copied from the task."""

    text: str
    words: tuple[str, ...]
    phrase: bool = False
    # Short stems must start a word, or "port" would match every `import`; `needle` is what is searched in
    # space-padded normalised text.
    word_start: bool = field(init=False, compare=False)
    needle: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "word_start", len(self.text) < 5)
        object.__setattr__(self, "needle", f" {self.text}" if self.word_start else self.text)


@dataclass(frozen=True, slots=True)
class Compound:
    """A glued identifier of the task (`SameSite`, `FileName`) and the terms of its parts that only it produced:
    where the code writes it as one word (`samesite`), those parts are noise (`site` matches `site_packages`)."""

    term: Term
    parts: tuple[Term, ...]


@dataclass(frozen=True, slots=True)
class Query:
    task: str
    terms: tuple[Term, ...]
    words: frozenset[str]
    compounds: tuple[Compound, ...] = ()
    # Names the task copied from the code (`Request`, `encode_host`, each part of `attr.astuple`), normalised
    # and padded like `Symbol.name_words`: a definition of exactly that name is what the task speaks of.
    names: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not self.terms

    def joined(self, found: Iterable[Compound]) -> Query:
        """This query with each compound in `found` standing for its parts."""
        found = tuple(found)
        if not found:
            return self
        dropped = {part for compound in found for part in compound.parts}
        return Query(self.task, tuple(term for term in self.terms if term not in dropped), self.words, (), self.names)


def parse_query(task: str) -> Query:
    """Terms for `task`: each content word once (stemmed), plus each identifier-looking token as a phrase.

    Glued identifiers (`SameSite`) are also `Compound`s: `Context` drops their parts where the code writes
    them as one word.
    """
    terms: dict[str, Term] = {}
    words: set[str] = set()
    sources: dict[str, int] = {}  # term text -> how many tokens of the task produced it
    glued: list[tuple[Term, list[str]]] = []
    code = set(_QUOTED.findall(task))
    for raw in re.findall(r"[^\s`'\"(),;:!?\[\]{}<>]+", task):
        parts = [p for p in split_identifier(raw) if p]
        kept = []
        for part in parts:
            if part in STOP_WORDS or len(part) < 3 or part.isdigit():
                continue
            words.add(part)
            key = stem(part)
            terms.setdefault(key, Term(key, (part,)))
            kept.append(key)
        for key in set(kept):
            sources[key] = sources.get(key, 0) + 1
        if _looks_like_code(raw):
            code.add(raw)
        if len(parts) > 1 and _IDENTIFIER.fullmatch(raw) and _looks_like_code(raw):
            joined = not ("_" in raw or "." in raw)
            phrase = "".join(parts) if joined else " ".join(parts)
            term = terms.setdefault(phrase, Term(phrase, tuple(parts), phrase=True))
            if joined:
                glued.append((term, kept))
    compounds = [
        Compound(term, tuple(terms[k] for k in dict.fromkeys(kept) if sources[k] == 1)) for term, kept in glued
    ]
    names = {f" {normalize(n)} " for name in code for n in name.split(".") if len(n.strip("_")) >= 3}
    return Query(
        task=task, terms=tuple(terms.values()), words=frozenset(words), compounds=tuple(compounds),
        names=frozenset(names),
    )  # fmt: skip


def _looks_like_code(token: str) -> bool:
    """snake_case, dotted.names, CamelCase or camelCase: a name the task copied from the code."""
    return "_" in token or "." in token.strip(".") or bool(re.search(r"[a-z][A-Z]|[A-Z][a-z]+[A-Z]", token))
