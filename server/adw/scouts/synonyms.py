"""Synonyms learned from the code itself: the words its definitions use together.

`set_session_cookie`, `SESSION_COOKIE_SECURE` and `SessionCookieJar` say that, in this code, "cookie" and
"session" go together; a task about cookies then also looks, at a low weight, at files that only speak of
sessions. The names come from the definitions (functions, methods, classes, attributes, constants) of the
files the query already reached in depth, whose facts are parsed anyway, so learning costs no extra read.
Each name is split (camel, snake), stop words dropped and each part stemmed like a query word; two stems are
partners when several distinct names contain both, measured by the Dice coefficient so that words every name
uses (`get`, `self`, `init`) do not become everybody's partner.
"""

from __future__ import annotations

from collections.abc import Iterable

from adw.scouts.facts import Symbol
from adw.scouts.terms import STOP_WORDS, Term, split_identifier, stem

MIN_NAMES = 2  # distinct names the two stems must share
MIN_DICE = 0.25
PER_TERM = 2  # partners kept per query term
_CODE_KINDS = frozenset({"function", "method", "class", "attribute", "constant"})
_MEMO_LIMIT = 200_000
_stems_of: dict[str, frozenset[str]] = {}


def name_stems(name: str) -> frozenset[str]:
    """The stems of a definition name's parts, as a query would stem them (memoised)."""
    found = _stems_of.get(name)
    if found is None:
        found = frozenset(
            stem(part)
            for part in split_identifier(name)
            if len(part) >= 3 and not part.isdigit() and part not in STOP_WORDS
        )
        if len(_stems_of) >= _MEMO_LIMIT:
            _stems_of.clear()
        _stems_of[name] = found
    return found


def learn(symbols: Iterable[Symbol], terms: Iterable[Term]) -> dict[Term, list[tuple[str, float]]]:
    """For each single-word query term, its strongest partners in `symbols`' names: [(stem, dice)]."""
    names: set[frozenset[str]] = set()
    seen: set[str] = set()
    for symbol in symbols:
        if symbol.kind in _CODE_KINDS and symbol.name not in seen:
            seen.add(symbol.name)
            parts = name_stems(symbol.name)
            if len(parts) > 1:
                names.add(parts)
    frequency: dict[str, int] = {}
    for parts in names:
        for part in parts:
            frequency[part] = frequency.get(part, 0) + 1
    words = [term for term in terms if not term.phrase]
    own = {term.text for term in words}
    learned: dict[Term, list[tuple[str, float]]] = {}
    for term in words:
        together: dict[str, int] = {}
        with_term = 0
        for parts in names:
            if any(part.startswith(term.text) for part in parts):
                with_term += 1
                for part in parts:
                    if not part.startswith(term.text):
                        together[part] = together.get(part, 0) + 1
        ranked = sorted(
            (
                (part, 2 * count / (with_term + frequency[part]))
                for part, count in together.items()
                if count >= MIN_NAMES and not _related(part, own)
            ),
            key=lambda item: (-item[1], item[0]),
        )
        kept = [(part, dice) for part, dice in ranked if dice >= MIN_DICE][:PER_TERM]
        if kept:
            learned[term] = kept
    return learned


def _related(part: str, own: set[str]) -> bool:
    """A partner that is (part of) a query term adds nothing: the term already finds it."""
    return any(part in text or text in part for text in own)
