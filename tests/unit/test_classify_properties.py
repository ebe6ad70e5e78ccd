"""The shipped rule tables classify exactly as the plain ones: every regex, in order, over the whole text."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pinwatch.classify import (
    DIGEST_KEY_CHARS,
    DIGEST_RULES,
    REASON_KEY_CHARS,
    REASON_RULES,
    SESSION_SETTINGS,
    UNKNOWN,
    classify,
    refine_by_digest,
)

# The rule tables as first written: one regex per code, each searched over the whole text, in order.
# The shipped tables split some codes into literal-first rows and gate each row on keywords; these
# stay the specification they must agree with.
_REFERENCE_REASONS = [
    (code, re.compile(pattern))
    for code, pattern in (
        ("large_statement", r"16384 byte|16 ?kb|byte limit|exceeded the .*limit"),
        ("distributed_transaction", r"distributed transaction|\bdtc\b|\bmsdtc\b"),
        ("multiple_active_result_sets", r"multiple active result sets|\bmars\b"),
        ("executable_comment", r"executable comment|/\*m?!"),
        ("session_reset", r"\bdiscard all\b|\breset all\b|reset query"),
        ("prepared_statement", r"parse message|prepared statement|\bprepare\b"),
        ("temporary_table", r"\btemp(orary)? (table|sequence|view)s?\b"),
        ("cursor", r"\bcursors?\b"),
        ("listen", r"\blisten\b"),
        ("user_variable", r"user[- ](defined )?variable"),
        ("sequence_function", r"\b(nextval|setval)\b|sequence function"),
        ("library_load", r"\bload\b.*\blibrar|\blibrary\b"),
        ("lock", r"\block(s|ed|ing)?\b|get_lock|advisory"),
        (
            SESSION_SETTINGS,
            r"session (settings?|state|variables?|parameters?|options?)|system variable|\bset (statement|option)s?\b",
        ),
        ("transaction", r"\btransactions?\b"),
    )
]
_REFERENCE_DIGESTS = [
    (code, re.compile(pattern))
    for code, pattern in (
        ("executable_comment", r"/\*m?!"),
        ("session_reset", r"\b(discard\s+(all|temp|temporary|plans|sequences)|reset\s+all)\b"),
        ("listen", r"(^|;)\s*listen\b"),
        ("library_load", r"(^|;)\s*load\b"),
        ("cursor", r"\bdeclare\b[^;]*\bcursor\b"),
        ("temporary_table", r"\bcreate\s+(global\s+|local\s+)?(temp|temporary)\s+(table|sequence|view)\b"),
        (
            "lock",
            r"\bpg_(try_)?advisory_lock(_shared)?\s*\(|\bget_lock\s*\(|(^|;)\s*lock\s+tables?\b|"
            r"\bflush\s+tables\s+with\s+read\s+lock\b",
        ),
        ("sequence_function", r"\b(nextval|setval)\s*\("),
        ("user_variable", r"(^|[\s,;(])@(?!@)[\w$.]+\s*:?=|\binto\s+@(?!@)\w"),
        ("prepared_statement", r"(^|;)\s*(prepare|deallocate|execute)\b"),
    )
]


def reference_refine(digest: str) -> str | None:
    """The straightforward reading of the digest table: every regex, in order, on the whole text."""
    lowered = digest.lower()
    return next((code for code, rx in _REFERENCE_DIGESTS if rx.search(lowered)), None)


def reference_classify(reason_text: str, digest: str | None) -> str:
    """The straightforward reading of both tables, on the same bounded keys as :func:`classify`."""
    text = reason_text[:REASON_KEY_CHARS].lower()
    code = next((c for c, rx in _REFERENCE_REASONS if rx.search(text)), UNKNOWN)
    if code == SESSION_SETTINGS and digest:
        return reference_refine(digest[:DIGEST_KEY_CHARS]) or code
    return code


# Pieces that make rules match, nearly match, and compete for the first place; in mixed case,
# since the rules run on lower-cased text.
_PIECES = [
    *("SQL changed session settings", "system variable", "set option", "SET ", "set", "session state"),
    *("16384 byte", "16 KB", "16kb", "byte limit", "exceeded the ", " limit", "distributed transaction", "DTC"),
    *("msdtc", "MARS", "multiple active result sets", "executable comment", "/*!", "/*M!", "/*", "*/"),
    *("discard all", "DISCARD  ALL", "reset all", "RESET\tall", "reset query", "parse message", "prepare"),
    *("DISCARD TEMP", "discard\ttemporary", "discard plans", "DISCARD SEQUENCES", "discard tempx", "RESET x"),
    *("Running a prepared statement...",),
    *("prepared statement", "PREPARE ", "deallocate", "execute", "temp table", "temporary views", "create "),
    *("CREATE GLOBAL TEMPORARY TABLE", "temp ", "temporary", "sequence", "cursor", "cursors", "DECLARE c "),
    *("listen", "LISTEN ", "user variable", "user-defined variable", "nextval", "setval(", "sequence function"),
    *("load", "LOAD ", "library", "librar", "lock", "locked", "LOCK TABLES ", "lock  table", "get_lock ("),
    *("pg_advisory_lock(", "pg_try_advisory_lock_shared (", "advisory", "flush tables with read lock"),
    *("transaction", "transactions", "@x := ", "@@session.x = ", "@", "@@", "= ", ":=", "into @v", "INTO  @"),
    *("lock_timeout", "search_path", "$1", "?", ";", ",", "(", ")", " ", "\n", "x", "_", "'", "İ", "é", "1"),
    *("xpg_advisory_lock(", "pg_advisory_lock_shared(", "_get_lock(", "into", "xinto @a", "(@a=", "a@b=", "flush "),
    *("tables", "@ab.c :=", ";lock tables", "; listen", ";load", "execute", "; prepare", "copy@"),
]
_texts = st.one_of(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join), st.text(max_size=60))


@settings(max_examples=1000)
@given(_texts, st.one_of(st.none(), _texts))
@example("SQL changed session settings", "set lock_timeout = $1; LOCK TABLES t WRITE")
@example("SQL changed session settings", "select 1 /* x */; set @a := ?")
@example("The session acquired a lock.", None)
def test_given_any_reason_and_digest_when_classified_then_it_equals_running_every_rule_in_order(
    reason_text: str, digest: str | None
) -> None:
    assert classify(reason_text, digest) == reference_classify(reason_text, digest)


@settings(max_examples=1000)
@given(_texts)
def test_given_any_digest_when_refined_then_it_equals_running_every_digest_rule_in_order(digest: str) -> None:
    assert refine_by_digest(digest) == reference_refine(digest)


_ALL_RULES = [(code, pattern, keywords) for code, pattern, keywords in (*REASON_RULES, *DIGEST_RULES)]


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_given_any_text_a_rule_pattern_matches_then_it_contains_one_of_the_rule_keywords(data: st.DataObject) -> None:
    # The keywords gate the regex: a match without any of them would be a rule silently skipped.
    for code, pattern, keywords in _ALL_RULES:
        text = data.draw(st.from_regex(pattern), label=code).lower()
        if re.search(pattern, text):
            assert any(k in text for k in keywords), (code, text)
