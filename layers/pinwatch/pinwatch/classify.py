"""Map a pin line's reason text (and statement digest) to a catalog code.

Strict by design: a reason text no rule recognises is ``unknown`` — the caller keeps the text
verbatim — rather than the closest-looking bucket. Rules are data: to recognise a new wording,
add a ``(code, pattern)`` row to :data:`REASON_RULES`; to refine the generic "changed session
settings" reason by its statement, add a row to :data:`DIGEST_RULES`.
"""

from __future__ import annotations

import re
from functools import lru_cache

UNKNOWN = "unknown"
SESSION_SETTINGS = "session_settings"

# Reason-text rules, first match wins (so the specific ones come before the broad ones).
# Patterns run on the lower-cased reason text.
REASON_RULES: tuple[tuple[str, str], ...] = (
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

# Digest rules refine a generic session_settings reason by what the statement did. They run on
# the lower-cased digest, first match wins: executable comments first (they wrap other SQL),
# plain SETs of user variables late (a statement may also reset, listen or lock).
DIGEST_RULES: tuple[tuple[str, str], ...] = (
    ("executable_comment", r"/\*m?!"),
    ("session_reset", r"\b(discard\s+all|reset\s+all)\b"),
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

# Memoisation keys are bounded so a hostile 256 KB reason cannot pin megabytes in the cache;
# every rule matches near the start of a reason, and digests longer than this are rare.
REASON_KEY_CHARS = 512
DIGEST_KEY_CHARS = 2048

_REASON_RULES = tuple((code, re.compile(pattern)) for code, pattern in REASON_RULES)
_DIGEST_RULES = tuple((code, re.compile(pattern)) for code, pattern in DIGEST_RULES)


def classify(reason_text: str, digest: str | None) -> str:
    """The catalog code for a pin reason; ``unknown`` when no rule recognises the reason text."""
    return _classify(reason_text[:REASON_KEY_CHARS], None if digest is None else digest[:DIGEST_KEY_CHARS])


@lru_cache(maxsize=4096)
def _classify(reason_text: str, digest: str | None) -> str:
    text = reason_text.lower()
    code = next((c for c, rx in _REASON_RULES if rx.search(text)), UNKNOWN)
    if code == SESSION_SETTINGS and digest:
        return refine_by_digest(digest) or code
    return code


def refine_by_digest(digest: str) -> str | None:
    """The more specific code a statement digest points to, or None when it is a plain SET."""
    lowered = digest.lower()
    return next((c for c, rx in _DIGEST_RULES if rx.search(lowered)), None)
