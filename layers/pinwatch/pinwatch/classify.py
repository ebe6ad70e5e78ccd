"""Map a pin line's reason text (and statement digest) to a catalog code.

Strict by design: a reason text no rule recognises is ``unknown`` — the caller keeps the text
verbatim — rather than the closest-looking bucket. Rules are data: to recognise a new wording,
add a ``(code, pattern, keywords)`` row to :data:`REASON_RULES`; to refine the generic "changed
session settings" reason by its statement, add a row to :data:`DIGEST_RULES`.

Every pin line with a new statement is classified on the ingest hot path, so a rule's regex runs
only when the text contains one of the rule's *keywords*: literal substrings of which every match
of the pattern contains at least one (a tested property). ``str.__contains__`` is a fast C scan,
whereas a pattern that starts with ``\\b`` or a group gives the regex engine no literal to skip
to, so it tries every position; most texts hold none of the keywords and cost a few substring
checks. The rule order, and so which rule wins, is unchanged by the gate.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import groupby
from operator import itemgetter

UNKNOWN = "unknown"
SESSION_SETTINGS = "session_settings"

# Reason-text rules, first match wins (so the specific ones come before the broad ones).
# Patterns run on the lower-cased reason text. (code, pattern, keywords)
REASON_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("large_statement", r"16384 byte|16 ?kb|byte limit|exceeded the .*limit", ("16", "byte limit", "exceeded the ")),
    ("distributed_transaction", r"distributed transaction|\bdtc\b|\bmsdtc\b", ("distributed transaction", "dtc")),
    ("multiple_active_result_sets", r"multiple active result sets|\bmars\b", ("multiple active result sets", "mars")),
    ("executable_comment", r"executable comment|/\*m?!", ("executable comment", "/*")),
    ("session_reset", r"\bdiscard all\b|\breset all\b|reset query", ("discard all", "reset ")),
    ("prepared_statement", r"parse message|prepared statement|\bprepare\b", ("parse message", "prepare")),
    ("temporary_table", r"\btemp(orary)? (table|sequence|view)s?\b", ("temp",)),
    ("cursor", r"\bcursors?\b", ("cursor",)),
    ("listen", r"\blisten\b", ("listen",)),
    ("user_variable", r"user[- ](defined )?variable", ("user",)),
    ("sequence_function", r"\b(nextval|setval)\b|sequence function", ("nextval", "setval", "sequence function")),
    ("library_load", r"\bload\b.*\blibrar|\blibrary\b", ("librar",)),
    ("lock", r"\block(s|ed|ing)?\b|get_lock|advisory", ("lock", "advisory")),
    (
        SESSION_SETTINGS,
        r"session (settings?|state|variables?|parameters?|options?)|system variable|\bset (statement|option)s?\b",
        ("session ", "system variable", "set "),
    ),
    ("transaction", r"\btransactions?\b", ("transaction",)),
)

# Digest rules refine a generic session_settings reason by what the statement did. They run on
# the lower-cased digest, first match wins: executable comments first (they wrap other SQL),
# plain SETs of user variables late (a statement may also reset, listen or lock).
# Where one code has several spellings they are consecutive rows, each written to start with a
# literal where it can (``(?<!\w)`` after the literal instead of a leading ``\b``, ``;``/``^`` rows
# instead of ``(^|;)``): the regex engine then skips to that literal instead of trying every position.
DIGEST_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("executable_comment", r"/\*m?!", ("/*",)),
    # AWS: "Discarding the session state" (DISCARD in any form) and pool resets (RESET ALL). `RESET <name>`
    # is "resetting a parameter to its default", listed with SET: it stays session_settings.
    (
        "session_reset",
        r"\b(discard\s+(all|temp|temporary|plans|sequences)|reset\s+all)\b",
        ("discard", "reset"),
    ),
    ("listen", r"^\s*listen\b", ("listen",)),
    ("listen", r";\s*listen\b", ("listen",)),
    ("library_load", r"^\s*load\b", ("load",)),
    ("library_load", r";\s*load\b", ("load",)),
    ("cursor", r"\bdeclare\b[^;]*\bcursor\b", ("cursor",)),
    ("temporary_table", r"\bcreate\s+(global\s+|local\s+)?(temp|temporary)\s+(table|sequence|view)\b", ("temp",)),
    ("lock", r"pg_(?<!\wpg_)(try_)?advisory_lock(_shared)?\s*\(", ("advisory_lock",)),
    ("lock", r"get_lock(?<!\wget_lock)\s*\(", ("get_lock",)),
    ("lock", r"^\s*lock\s+tables?\b", ("lock",)),
    ("lock", r";\s*lock\s+tables?\b", ("lock",)),
    ("lock", r"flush(?<!\wflush)\s+tables\s+with\s+read\s+lock\b", ("flush",)),
    ("sequence_function", r"\b(nextval|setval)\s*\(", ("nextval", "setval")),
    # A user variable assigned: `@` at the start or after whitespace, `,`, `;` or `(`, not `@@`.
    ("user_variable", r"@(?<![^\s,;(]@)(?!@)[\w$.]+\s*:?=", ("@",)),
    ("user_variable", r"into(?<!\winto)\s+@(?!@)\w", ("into",)),
    ("prepared_statement", r"^\s*(prepare|deallocate|execute)\b", ("prepare", "deallocate", "execute")),
    ("prepared_statement", r";\s*(prepare|deallocate|execute)\b", ("prepare", "deallocate", "execute")),
)

# Memoisation keys are bounded so a hostile 256 KB reason cannot pin megabytes in the cache;
# every rule matches near the start of a reason, and digests longer than this are rare.
REASON_KEY_CHARS = 512
DIGEST_KEY_CHARS = 2048


class RuleTable:
    """An ordered rule table compiled once: the code of the first rule whose pattern matches, or None."""

    __slots__ = ("_checks",)

    def __init__(self, rules: tuple[tuple[str, str, tuple[str, ...]], ...]) -> None:
        # One flat (keyword, rules) per keyword, in rule order, where consecutive rules gated by the
        # same keywords (one code's several spellings) share their checks: a text without the keyword
        # is rejected once for all of them. A rule whose keywords are both present may run its regex
        # twice, which is rare and cheaper than nested loops.
        self._checks = tuple(
            (keyword, group)
            for keywords, rows in groupby(rules, key=itemgetter(2))
            for group in [tuple((code, re.compile(pattern).search) for code, pattern, _ in rows)]
            for keyword in keywords
        )

    def first(self, text: str) -> str | None:
        for keyword, group in self._checks:
            if keyword in text:
                for code, search in group:
                    if search(text):
                        return code
        return None


_REASONS = RuleTable(REASON_RULES)
_DIGESTS = RuleTable(DIGEST_RULES)


def classify(reason_text: str, digest: str | None) -> str:
    """The catalog code for a pin reason; ``unknown`` when no rule recognises the reason text."""
    # Reason texts are a handful of proxy wordings, digests are as many as the application's
    # statements: the reason's code is cached on its own, so a new statement never re-runs the
    # reason rules (and its digest costs a few substring checks; callers memoise whole tails).
    code = _reason_code(reason_text[:REASON_KEY_CHARS])
    if code == SESSION_SETTINGS and digest:
        return _DIGESTS.first(digest[:DIGEST_KEY_CHARS].lower()) or code
    return code


@lru_cache(maxsize=256)
def _reason_code(reason_text: str) -> str:
    return _REASONS.first(reason_text.lower()) or UNKNOWN


def refine_by_digest(digest: str) -> str | None:
    """The more specific code a statement digest points to, or None when it is a plain SET."""
    return _DIGESTS.first(digest.lower())
