"""Synonyms learned from the names the code uses together."""

from __future__ import annotations

from adw.scouts import scout
from adw.scouts.facts import symbol
from adw.scouts.synonyms import learn, name_stems
from adw.scouts.terms import parse_query
from tests.conftest import MakeRepo

NAMES = [
    ("SESSION_COOKIE_SECURE", "constant"),
    ("SESSION_COOKIE_NAME", "constant"),
    ("set_session_cookie", "function"),
    ("deleteSessionCookie", "method"),
    ("get_cookie_domain", "function"),
    ("render_template", "function"),
    ("Router", "class"),
]


def test_name_stems_split_camel_and_snake_and_stem_like_a_query() -> None:
    assert name_stems("deleteSessionCookie") == {"delet", "session", "cooki"}
    assert name_stems("SESSION_COOKIES") == {"session", "cook"}
    assert name_stems("with_the_id") == frozenset()  # stop words and short parts say nothing


def test_partners_come_from_names_used_together_and_nonsense_learns_nothing() -> None:
    symbols = [symbol(name, kind, line) for line, (name, kind) in enumerate(NAMES, 1)]
    learned = {t.text: partners for t, partners in learn(symbols, parse_query("cookie zzqxv template").terms).items()}
    assert learned["cooki"][0][0] == "session"
    assert all(0 < dice <= 1 for _, dice in learned["cooki"])
    assert "zzqxv" not in learned  # a word no name uses has no partner
    assert "templat" not in learned  # `render_template` alone: one name is not "used together"


async def test_a_term_brings_files_named_with_its_partners_but_never_above_direct_matches(
    make_repo: MakeRepo,
) -> None:
    root = make_repo(
        {
            "src/app/config.py": (
                "SESSION_COOKIE_SECURE = False\nSESSION_COOKIE_NAME = 'session'\n\n\n"
                "def set_session_cookie(response, value):\n    response.headers['Set-Cookie'] = value\n\n\n"
                "def delete_session_cookie(response):\n    set_session_cookie(response, '')\n"
            ),
            "src/app/store.py": (
                "class SessionStore:\n    def open_session(self, request):\n        return {}\n\n"
                "    def save_session(self, data):\n        return data\n"
            ),
            "src/app/routing.py": "class Router:\n    def add_route(self, rule):\n        return rule\n",
        },
        name="cookies",
    )
    report = await scout("cookie flag is wrong", root)
    assert report.files[0] == "src/app/config.py"  # the direct match stays first
    assert "src/app/store.py" in report.files  # never says "cookie": reached through "session"
    assert "src/app/routing.py" not in report.files
    # A query whose words all meet in one file is not expanded: partners would only add noise.
    assert "src/app/store.py" not in (await scout("cookie", root)).files
    nonsense = await scout("zzqxv", root)
    assert nonsense.files == []
