"""Query analysis: identifier splitting, stemming, stop words, phrases, unicode."""

from __future__ import annotations

from adw.scouts.terms import normalize, parse_query, split_identifier, stem


def test_split_identifier_handles_camel_snake_and_acronyms() -> None:
    assert split_identifier("parseHTTPResponse_v2") == ["parse", "http", "response", "v", "2"]
    assert split_identifier("SESSION_COOKIE_SECURE") == ["session", "cookie", "secure"]
    assert split_identifier("set-cookie") == ["set", "cookie"]


def test_normalize_is_ascii_lowercase_words() -> None:
    assert normalize("Set_Cookie(secure=True)") == "set cookie secure true"
    assert normalize("café ☕ naïve") == "caf na ve"


def test_stem_strips_one_suffix_and_keeps_four_letters() -> None:
    assert stem("security") == "secur"
    assert stem("secure") == "secur"
    assert stem("cookies") == "cook"
    assert stem("policies") == "polic"
    assert stem("user") == "user"
    assert stem("class") == "class"


def test_parse_query_drops_stop_words_and_adds_identifier_phrases() -> None:
    query = parse_query("Fix: session cookie is not marked secure when SESSION_COOKIE_SECURE is set")
    texts = {term.text for term in query.terms}
    assert {"session", "cooki", "secur", "mark"} <= texts
    assert "session cookie secure" in texts
    assert not {"fix", "is", "not", "when"} & texts
    phrase = next(term for term in query.terms if term.phrase)
    assert phrase.words == ("session", "cookie", "secure")


def test_camel_case_identifier_becomes_a_glued_phrase() -> None:
    query = parse_query("Expose FunctionAuth in the API")
    assert any(term.phrase and term.text == "functionauth" for term in query.terms)


def test_short_terms_must_start_a_word() -> None:
    query = parse_query("port")
    (term,) = query.terms
    assert term.word_start and term.needle == " port"


def test_unicode_and_empty_queries() -> None:
    assert parse_query("").empty
    assert parse_query("修复 — ☕ !!").empty
    assert {t.text for t in parse_query("修复 session ☕").terms} == {"session"}


def test_names_copied_from_the_code_are_kept_whole() -> None:
    query = parse_query("Fix `Request` and Argument.__repr__ when SESSION_COOKIE is unset, via `safe=...`")
    assert query.names == {" request ", " argument ", " repr ", " session cookie ", " safe "}
    # Prose names nothing, and a compound standing for its parts keeps the names.
    assert not parse_query("Fix the request when the cookie is unset").names
    glued = parse_query("Add `SameSite` option")
    assert glued.joined(glued.compounds).names == {" samesite "}
