"""Model-based test: random sequences of Store calls against a plain-Python model.

Small sets of keys, databases and tables make operations collide; every write
stores a unique value so a wrong answer is attributable. Time is a fake clock
that the machine moves, so expiry is exercised deterministically, and the
store is disconnected, reconnected and reopened at random points.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from store_api import NotFoundError, Record, Store

if TYPE_CHECKING:
    from conftest import StoreFactory

# Mostly the default namespace, so that operations meet; a few others for isolation.
DATABASES = ["", "", "", "micro", "x", "a/b", "a\x00"]
TABLES = ["", "", "", "micro", "x", "b/c", "a\x00"]
KEY_CHARS = "ab/\x00é😀%*"
KEYS = st.sampled_from(["a", "ab", "b", "ba", "a/b", "%", "*", "\x00", "a\x00", "😀"]) | (
    st.text(alphabet=KEY_CHARS, min_size=1, max_size=2)
)
AFFIXES = st.sampled_from(["", "a", "b", "/", "\x00", "😀", "ab"]) | st.text(
    alphabet=KEY_CHARS, max_size=2
)
METADATA = st.sampled_from([{}, {"n": 1}, {"s": "x", "l": [1, 2.5, None]}, {"nested": {"k": True}}])
SECONDS = st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.5, 10.0])
LIFETIMES = st.sampled_from(["none", "ttl", "ttl_timedelta", "expiry", "record", "all"])
PAGES = st.sampled_from([0, 0, 0, 0, 0, 1, 2, 3])


@dataclass
class Entry:
    """What the model holds for one key."""

    value: bytes
    metadata: dict[str, Any]
    expires_at: float | None
    requested: float | None


def run_machine(factory: StoreFactory, *, examples: int, steps: int) -> None:
    """Run the state machine against stores made by ``factory``."""
    clock = factory.clock
    counter = itertools.count()

    class StoreMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.store: Store = factory()
            self.model: dict[tuple[str, str], dict[str, Entry]] = {}
            self.default = ("micro", "micro")

        def teardown(self) -> None:
            self.store.disconnect()

        def table(self, database: str, table: str) -> dict[str, Entry]:
            names = (database or self.default[0], table or self.default[1])
            return self.model.setdefault(names, {})

        def live(self, database: str, table: str) -> dict[str, Entry]:
            now = clock()
            return {
                key: entry
                for key, entry in self.table(database, table).items()
                if entry.expires_at is None or entry.expires_at > now
            }

        def expected_keys(
            self, database: str, table: str, prefix: str, suffix: str, limit: int, offset: int
        ) -> list[str]:
            keys = sorted(
                key
                for key in self.live(database, table)
                if key.startswith(prefix) and key.endswith(suffix)
            )
            keys = keys[offset:]
            return keys[:limit] if limit else keys

        def check_record(self, record: Record, entry: Entry) -> None:
            assert record.value == entry.value
            assert record.metadata == entry.metadata
            if entry.expires_at is None:
                assert record.expiry == timedelta(0)
            else:
                assert entry.requested is not None
                left = record.expiry.total_seconds()
                assert 0 < left <= entry.requested
                assert abs(left - (entry.expires_at - clock())) <= 1e-6

        @initialize()
        def start(self) -> None:
            self.default = (self.store.options().database, self.store.options().table)

        @rule(
            key=KEYS,
            database=st.sampled_from(DATABASES),
            table=st.sampled_from(TABLES),
            metadata=METADATA,
            lifetime=LIFETIMES,
            seconds=SECONDS,
            other=SECONDS,
        )
        def write(
            self,
            key: str,
            database: str,
            table: str,
            metadata: dict[str, Any],
            lifetime: str,
            seconds: float,
            other: float,
        ) -> None:
            value = f"value-{next(counter)}".encode()
            now = clock()
            expires_at: float | None = None
            requested: float | None = None
            at = datetime.fromtimestamp(now + seconds, tz=UTC)
            if lifetime == "none":
                self.store.write(Record(key, value, dict(metadata)), database=database, table=table)
            elif lifetime in ("ttl", "ttl_timedelta"):
                ttl: float | timedelta = seconds
                if lifetime == "ttl_timedelta":
                    ttl = timedelta(seconds=seconds)
                self.store.write(
                    Record(key, value, dict(metadata)), database=database, table=table, ttl=ttl
                )
                requested = seconds or None
            elif lifetime == "expiry":
                self.store.write(
                    Record(key, value, dict(metadata)), database=database, table=table, expiry=at
                )
                requested = seconds
            elif lifetime == "record":
                self.store.write(
                    Record(key, value, dict(metadata), expiry=seconds),
                    database=database,
                    table=table,
                )
                requested = seconds or None
            else:
                # All three: ttl wins unless zero, then the absolute expiry.
                self.store.write(
                    Record(key, value, dict(metadata), expiry=other),
                    database=database,
                    table=table,
                    ttl=seconds,
                    expiry=datetime.fromtimestamp(now + other, tz=UTC),
                )
                requested = seconds or other
            if requested is not None:
                expires_at = now + requested
            entries = self.table(database, table)
            if expires_at is not None and expires_at <= now:
                entries.pop(key, None)
            else:
                entries[key] = Entry(value, dict(metadata), expires_at, requested)

        @rule(key=KEYS)
        def write_plain(self, key: str) -> None:
            """The common write: default namespace, no metadata, no expiry."""
            value = f"value-{next(counter)}".encode()
            self.store.write(Record(key, value))
            self.table("", "")[key] = Entry(value, {}, None, None)

        @rule(key=KEYS, database=st.sampled_from(DATABASES), table=st.sampled_from(TABLES))
        def read_exact(self, key: str, database: str, table: str) -> None:
            entry = self.live(database, table).get(key)
            if entry is None:
                with pytest.raises(NotFoundError):
                    self.store.read(key, database=database, table=table)
            else:
                [record] = self.store.read(key, database=database, table=table)
                assert record.key == key
                self.check_record(record, entry)

        @rule(
            affix=AFFIXES,
            mode=st.sampled_from(["prefix", "suffix", "both"]),
            database=st.sampled_from(DATABASES),
            table=st.sampled_from(TABLES),
            limit=PAGES,
            offset=PAGES,
        )
        def read_many(
            self, affix: str, mode: str, database: str, table: str, limit: int, offset: int
        ) -> None:
            prefix = affix if mode in ("prefix", "both") else ""
            suffix = affix if mode in ("suffix", "both") else ""
            expected = self.expected_keys(database, table, prefix, suffix, limit, offset)
            records = self.store.read(
                affix,
                database=database,
                table=table,
                prefix=mode in ("prefix", "both"),
                suffix=mode in ("suffix", "both"),
                limit=limit,
                offset=offset,
            )
            assert [record.key for record in records] == expected
            live = self.live(database, table)
            for record in records:
                self.check_record(record, live[record.key])

        @rule(
            prefix=AFFIXES,
            suffix=AFFIXES,
            database=st.sampled_from(DATABASES),
            table=st.sampled_from(TABLES),
            limit=PAGES,
            offset=PAGES,
        )
        def list_keys(
            self, prefix: str, suffix: str, database: str, table: str, limit: int, offset: int
        ) -> None:
            expected = self.expected_keys(database, table, prefix, suffix, limit, offset)
            listed = self.store.list(
                database=database,
                table=table,
                prefix=prefix,
                suffix=suffix,
                limit=limit,
                offset=offset,
            )
            assert listed == expected

        @rule(suffix=AFFIXES, limit=PAGES, offset=PAGES)
        def list_suffix(self, suffix: str, limit: int, offset: int) -> None:
            """Suffix listing of the default table, the query the suffix index serves."""
            expected = self.expected_keys("", "", "", suffix, limit, offset)
            assert self.store.list(suffix=suffix, limit=limit, offset=offset) == expected

        @rule(key=KEYS, database=st.sampled_from(DATABASES), table=st.sampled_from(TABLES))
        def delete(self, key: str, database: str, table: str) -> None:
            self.store.delete(key, database=database, table=table)
            self.table(database, table).pop(key, None)

        @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 2.5, 5.0]))
        def advance(self, seconds: float) -> None:
            clock.advance(seconds)

        @rule(
            action=st.sampled_from(["disconnect", "connect", "reopen", "init"]),
            database=st.sampled_from(DATABASES),
            table=st.sampled_from(TABLES),
        )
        def lifecycle(self, action: str, database: str, table: str) -> None:
            """One rule for all of these so that they do not crowd out data operations."""
            if action == "disconnect":
                self.store.disconnect()
            elif action == "connect":
                self.store.connect()
            elif action == "reopen":
                self.store = factory.reopen(self.store)
            else:
                self.store.init(database=database, table=table)
                self.default = (database or "micro", table or "micro")
            options = self.store.options()
            assert (options.database, options.table) == self.default

        @invariant()
        def default_table_lists_live_keys(self) -> None:
            live = self.live("", "")
            assert self.store.list() == sorted(live)
            # Suffix listings every step: catches a suffix index that keeps dead keys
            # or misses new ones as soon as it happens, not only when a rule asks.
            for affix in ("a", "b"):
                expected = sorted(key for key in live if key.endswith(affix))
                assert self.store.list(suffix=affix) == expected
                records = self.store.read(affix, suffix=True)
                assert [record.key for record in records] == expected
                for record in records:
                    self.check_record(record, live[record.key])
            expected = sorted(key for key in live if key.startswith("a"))
            assert [record.key for record in self.store.read("a", prefix=True)] == expected

    run_state_machine_as_test(
        StoreMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


#: Examples per backend: a server round trip per call makes each PostgreSQL example ~40x slower.
EXAMPLES = {"postgres": 15}


def test_store_matches_the_model(store_factory: StoreFactory) -> None:
    run_machine(store_factory, examples=EXAMPLES.get(store_factory.backend.name, 60), steps=50)
