"""Unit tests of the keyspace's parts alone: the index, the expiry table, the ledger."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.expiry import ExpiryTable
from engine.index import KeyIndex, prefix_end
from engine.keyspace import Keyspace
from engine.location import pack_location, segment_of, size_of, unpack_location

KEYS = st.lists(st.sampled_from([b"a", b"b", b"\xff"]), min_size=1, max_size=3).map(b"".join)


def test_a_location_packs_and_unpacks_segment_offset_and_size() -> None:
    location = pack_location(12, (1 << 40) - 1, (1 << 32) - 1)
    assert unpack_location(location) == (12, (1 << 40) - 1, (1 << 32) - 1)
    assert segment_of(location) == 12 and size_of(location) == (1 << 32) - 1
    assert pack_location(1, 0, 0) > pack_location(0, (1 << 40) - 1, (1 << 32) - 1)


def test_prefix_end_bounds_every_key_with_the_prefix() -> None:
    assert prefix_end(b"ab") == b"ac"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["put", "remove", "scan"]), KEYS), max_size=60))
def test_the_index_orders_what_a_dict_holds(ops: list[tuple[str, bytes]]) -> None:
    """Puts, removes and ordered reads interleaved: every ordered read sees the dict, sorted."""
    index, model = KeyIndex(), {}
    for n, (op, key) in enumerate(ops):
        if op == "put":
            assert index.put(key, n) == model.get(key)
            model[key] = n
        elif op == "remove":
            assert index.remove(key) == model.pop(key, None)
        else:
            assert list(index.range()) == sorted(model)
            assert list(index.range(reverse=True)) == sorted(model, reverse=True)
            assert list(index.range(prefix=key)) == sorted(k for k in model if k.startswith(key))
            assert list(index.range(key, b"b")) == sorted(k for k in model if key <= k < b"b")
            for reverse in (False, True):
                for limit in (None, 0, 1, 2):
                    spans = (
                        index.span(key, b"b", b"", reverse, limit),
                        index.span(None, None, key, reverse, limit),
                    )
                    ranges = (
                        index.range(key, b"b", reverse=reverse),
                        index.range(prefix=key, reverse=reverse),
                    )
                    for span, keys in zip(spans, ranges, strict=True):
                        assert span == list(keys)[:limit]
    assert dict(index.locations) == model and len(index) == len(model)


def test_an_index_over_recovered_locations_sorts_them_at_its_first_ordered_read() -> None:
    keys = [b"k%03d" % i for i in random.Random(1).sample(range(500), 500)]
    index = KeyIndex.over({key: i for i, key in enumerate(keys)})
    index.remove(b"k007")
    index.put(b"new", 1)
    assert list(index.range()) == sorted([*set(keys) - {b"k007"}, b"new"])


def test_replace_if_moves_a_key_only_from_the_expected_location() -> None:
    index = KeyIndex()
    index.put(b"k", 1)
    assert not index.replace_if(b"k", 2, 3) and index.get(b"k") == 1
    assert index.replace_if(b"k", 1, 3) and index.get(b"k") == 3
    assert not index.replace_if(b"gone", 1, 3) and b"gone" not in index


def test_the_expiry_table_pops_expired_keys_soonest_first_and_skips_stale_entries() -> None:
    table = ExpiryTable({b"a": 5.0})
    table.set(b"b", 3.0)
    table.set(b"c", 9.0)
    table.set(b"b", 7.0)  # rewritten: its entry at 3.0 is stale
    table.discard(b"c")
    assert table.is_expired(b"a", 5.0) and not table.is_expired(b"b", 5.0)
    assert table.pop_expired(4.0) == []
    assert table.pop_expired(7.0) == [b"a", b"b"]
    assert len(table) == 0 and table.pop_expired(100.0) == []


def test_the_expiry_table_keeps_only_the_latest_time_of_a_rewritten_key() -> None:
    table = ExpiryTable()
    for i in range(5000):
        table.set(b"k%d" % (i % 3), float(i + 10))
    assert table.pop_expired(1.0) == [] and len(table) == 3
    assert table.pop_expired(5006.0) == []
    assert sorted(table.pop_expired(5009.0)) == [b"k0", b"k1", b"k2"]


def loc(segment: int, offset: int, size: int) -> int:
    return pack_location(segment, offset, size)


def test_the_keyspace_counts_every_record_an_overwrite_or_delete_kills() -> None:
    space = Keyspace()
    space.put(b"k", loc(1, 16, 40))
    space.put(b"k", loc(1, 56, 41))
    assert space.dead_bytes(1) == 40
    space.delete(b"k", loc(2, 16, 30))  # the old record and the tombstone itself
    assert space.dead_bytes(1) == 81 and space.dead_bytes(2) == 30
    assert b"k" not in space and len(space) == 0


def test_the_keyspace_expires_keys_and_counts_their_records_dead() -> None:
    space = Keyspace()
    space.put_expiring(b"e", loc(1, 16, 50), expires=10.0, now=5.0)
    space.put_expiring(b"past", loc(1, 66, 20), expires=4.0, now=5.0)  # acts as a delete
    assert space.entry(b"e") == (loc(1, 16, 50), 10.0) and b"past" not in space
    assert space.dead_bytes(1) == 20 and space.expiring == 1
    assert space.live_location(b"e", 9.0) == loc(1, 16, 50)
    assert space.live_location(b"e", 10.0) is None and space.is_expired(b"e", 10.0)
    assert space.snapshot(None, None, b"", False, 9.0) == ([b"e"], [loc(1, 16, 50)])
    assert space.snapshot(None, None, b"", False, 10.0) == ([], [])
    space.drop_expired(10.0)
    assert len(space) == 0 and space.dead_bytes(1) == 70 and space.expiring == 0


def test_a_put_without_expiry_clears_the_old_expiry() -> None:
    space = Keyspace()
    space.put_expiring(b"k", loc(1, 16, 50), expires=10.0, now=5.0)
    space.put(b"k", loc(1, 66, 50))
    assert space.entry(b"k") == (loc(1, 66, 50), None)
    space.drop_expired(20.0)
    assert b"k" in space


def test_a_batch_applies_like_its_operations_one_at_a_time_plus_a_dead_marker() -> None:
    ops = [(b"a", b"1", 0.0), (b"b", b"2", 50.0), (b"a", None, 0.0), (b"c", b"3", 1.0)]
    sizes = [40, 41, 30, 42, 33]
    batch = Keyspace()
    batch.apply_batch(ops, sizes, (1 << 40) | 16, now=5.0)
    single = Keyspace()
    offset = 16
    for (key, value, expires), size in zip(ops, sizes, strict=False):
        if value is None:
            single.delete(key, loc(1, offset, size))
        elif expires:
            single.put_expiring(key, loc(1, offset, size), expires, now=5.0)
        else:
            single.put(key, loc(1, offset, size))
        offset += size
    single.mark_dead(loc(1, offset, sizes[-1]))
    assert batch.snapshot(None, None, b"", False, 5.0) == single.snapshot(
        None, None, b"", False, 5.0
    )
    assert batch.dead_bytes(1) == single.dead_bytes(1) == 40 + 30 + 42 + 33


def test_a_move_loses_to_a_write_that_raced_it_and_counts_the_copy_dead() -> None:
    space = Keyspace()
    space.put(b"k", loc(1, 16, 40))
    space.add_segment(7, 0)
    assert space.move(b"k", loc(1, 16, 40), loc(7, 16, 40))
    space.put(b"k", loc(2, 16, 40))
    assert not space.move(b"k", loc(7, 16, 40), loc(8, 16, 40))
    assert space.entry(b"k")[0] == loc(2, 16, 40) and space.dead_bytes(8) == 40
    space.forget_segment(7)
    assert space.dead_bytes(7) == 0
