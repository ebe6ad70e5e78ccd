"""Scaffolding: the DIGEST_HINTS table gives exactly what the hand-written _digest_hints gave."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from pinwatch import digest as dg
from pinwatch import hints as h
from pinwatch.catalog import CATALOG, DRIVERS
from pinwatch.records import EngineFamily, PoolConfig

ENGINES = [None, *EngineFamily]
KINDS = [
    dg.LOCK,
    dg.RESET,
    dg.LISTEN,
    dg.SEQUENCE,
    dg.LOAD,
    dg.CURSOR,
    dg.CREATE_TEMP,
    dg.EXECUTABLE_COMMENT,
    dg.PREPARE,
    dg.EXECUTE,
    dg.DEALLOCATE,
    dg.SET,
    dg.QUERY,
]
TEXTS = ["select 1", "select pg_advisory_lock($1)", "select get_lock(?, ?)", "advisory_lock get_lock", "LOCK TABLES t"]
V = dg.SetVariable
POOL_VARS = [
    V("@x", dg.USER, False, True),
    V("sql_mode", dg.SESSION, True, False),
    V("names", dg.SESSION, True, False),
    V("optimizer_search_depth", dg.SESSION, False, True),
    V("transaction_isolation", dg.NEXT_TRANSACTION, False, True),
    V("autocommit", dg.LOCAL, True, False),
    V("search_path", dg.SESSION, False, True),
    V("timezone", dg.SESSION, False, True),
    V("work_mem", dg.SESSION, False, True),
    V("search_path", dg.LOCAL, False, True),
    V("@y", dg.USER, False, True),
]
ITEM = CATALOG["session_settings"]
POOLS = [None, PoolConfig(session_pinning_filters=("EXCLUDE_VARIABLE_SETS",), init_query="SET work_mem = 1")]


def info(
    kinds: tuple[str, ...], text: str, variables: tuple[dg.SetVariable, ...], engine: EngineFamily | None
) -> dg.DigestInfo:
    return dg.DigestInfo(text, engine, False, kinds, variables)


def test_kinds_by_texts_by_engines() -> None:
    n = 0
    for r in range(len(KINDS) + 1):
        for kinds in itertools.combinations(KINDS, r):
            for text, engine in itertools.product(TEXTS, ENGINES):
                for order in (kinds, kinds[::-1]):
                    i = info(order, text, (), engine)
                    assert h._digest_hints(ITEM, i, engine) == h._digest_hints_old(ITEM, i, engine, None)
                    n += 1
    print("kind cases", n)


def test_variables_by_engines() -> None:
    n = 0
    for r in range(len(POOL_VARS) + 1):
        for variables in itertools.combinations(POOL_VARS, r):
            for order in (variables, variables[::-1]):
                for engine in ENGINES:
                    i = info((dg.SET,), "set x", order, engine)
                    assert h._digest_hints(ITEM, i, engine) == h._digest_hints_old(ITEM, i, engine, None)
                    n += 1
    print("variable cases", n)


DIGESTS = sorted(
    set(
        m.group(1)
        for p in Path(__file__).parent.glob("*.py")
        for m in re.finditer(
            r'"((?:set|SET|select|SELECT|lock|LOCK|listen|LISTEN|discard|DISCARD|declare|DECLARE|'
            r'create temp|CREATE TEMP|prepare|PREPARE|load|LOAD|/\*!)[^"]*)"',
            p.read_text(),
        )
    )
)


@pytest.mark.parametrize("code", list(CATALOG))
def test_hints_for_end_to_end(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    driver_sets = [(), *((d,) for d in DRIVERS), tuple(DRIVERS)]
    new = [
        h.hints_for(code, engine, digest, pool, drivers)
        for engine, digest, pool, drivers in itertools.product(ENGINES, [None, *DIGESTS], POOLS, driver_sets)
    ]
    monkeypatch.setattr(h, "_digest_hints", lambda item, i, engine: h._digest_hints_old(item, i, engine, None))
    old = [
        h.hints_for(code, engine, digest, pool, drivers)
        for engine, digest, pool, drivers in itertools.product(ENGINES, [None, *DIGESTS], POOLS, driver_sets)
    ]
    assert new == old
    assert len(DIGESTS) > 50
