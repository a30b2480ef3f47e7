"""Rebuilding the index from the segments on open, and repairing a torn tail.

Records are applied by sequence number, never by file order, so a segment
rewritten by compaction cannot shadow a newer write. Batch records count only
once their commit marker is read. What recovery cut or skipped is reported,
never silent; what counts as acceptable damage is the recovery mode, named as
RocksDB names its WAL recovery modes.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from crc32c import crc32c

from engine.errors import CorruptionError
from engine.format import (
    BATCH_COMMIT,
    BATCH_PUT,
    DELETE,
    LAYOUTS,
    MAX_KEY_SIZE,
    MAX_VALUE_SIZE,
    MIN_HEADER_SIZE,
    NO_EXPIRY,
    PUT,
    TYPE_MASK,
    unpack_expiry,
)
from engine.fs import FileSystem
from engine.hints import Hint, read_hint
from engine.index import KeyIndex
from engine.location import REF_MASK, SEGMENT_SHIFT, SIZE_BITS, SIZE_MASK, pack_location
from engine.loghints import log_hint_name, read_log_hint
from engine.reader import (
    TORN_TAIL,
    UNUSED,
    UNWRITTEN_GAP,
    DamagedRegion,
    ScannedRecord,
    SegmentReader,
)
from engine.segment import check_segment_header, is_torn_header, segment_name

log = logging.getLogger("seglog.recovery")

RecoveryMode = Literal[
    "tolerate_corrupted_tail", "absolute_consistency", "point_in_time", "skip_any_corrupted"
]
RECOVERY_MODES: Final = (
    "tolerate_corrupted_tail",
    "absolute_consistency",
    "point_in_time",
    "skip_any_corrupted",
)


@dataclass
class RecoveryReport:
    """What recovery found and what it had to drop."""

    mode: str = "tolerate_corrupted_tail"
    segments: int = 0
    records: int = 0
    truncated_bytes: int = 0
    skipped_bytes: int = 0
    incomplete_batches: int = 0
    quarantined_segments: list[str] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)


@dataclass
class RecoveredState:
    """The index and bookkeeping rebuilt from disk."""

    index: KeyIndex
    expiry: dict[bytes, float]
    dead_bytes: dict[int, int]
    segment_sizes: dict[int, int]
    max_seq: int
    report: RecoveryReport


class RecordSink(Protocol):
    """What ``replay_segment`` hands each valid, committed record to."""

    def apply(self, segment_id: int, record: ScannedRecord) -> None: ...


class _LogOutOfOrder(Exception):
    """The log's sequence numbers go backwards (segment files renamed or copied in)."""


class _Replayer:
    """Applies scanned records to an index by sequence number."""

    def __init__(self, now: float) -> None:
        self.now = now
        #: Whether the segment being replayed belongs to the log proper, which the
        #: writer fills in sequence order; ``log_seq`` is the highest seen there.
        self.in_log = False
        self.log_seq = 0
        #: Key to location: the index, built as a plain dict and sorted once at the end.
        self.locations: dict[bytes, int] = {}
        self.expiry: dict[bytes, float] = {}
        self.dead: dict[int, int] = {}
        self.seqs: dict[bytes, int] = {}
        #: The hints segments were loaded from: their live keys are not in ``seqs``
        #: (a million dict inserts saved), their sequence numbers are looked up here.
        self.hinted: dict[int, Hint] = {}
        self.max_seq = 0
        self.records = 0

    def _kill(self, location: int | None) -> None:
        if location is not None:
            segment_id = location >> SEGMENT_SHIFT
            self.dead[segment_id] = self.dead.get(segment_id, 0) + (location & SIZE_MASK)

    def _superseded(self, key: bytes, seq: int) -> bool:
        """Whether a record of ``key`` at least as new as ``seq`` was applied already."""
        known = self.seqs.get(key)
        if known is None and self.hinted:
            known = self._hinted_seq(key)
        return known is not None and known >= seq

    def apply(self, segment_id: int, record: ScannedRecord) -> None:
        offset, size, rtype, seq, expires_at, key = record
        if self.in_log:
            if seq <= self.log_seq:
                raise _LogOutOfOrder
            self.log_seq = seq
        self.records += 1
        if seq > self.max_seq:
            self.max_seq = seq
        location = pack_location(segment_id, offset, size)
        if rtype == BATCH_COMMIT:
            self._kill(location)
            return
        if self._superseded(key, seq):
            self._kill(location)
            return
        self.seqs[key] = seq
        live = (rtype in (PUT, BATCH_PUT)) and (expires_at == NO_EXPIRY or expires_at > self.now)
        if live:
            locations = self.locations
            self._kill(locations.get(key))
            locations[key] = location
            if expires_at == NO_EXPIRY:
                self.expiry.pop(key, None)
            else:
                self.expiry[key] = expires_at
        else:
            self._kill(self.locations.pop(key, None))
            self.expiry.pop(key, None)
            self._kill(location)

    def apply_plain_run(self, segment_id: int, data: bytes, offset: int) -> int:
        """Apply the plain puts and deletes from ``offset`` on; return where the run stopped.

        The common case of ``apply``, fused with ``parse_record``'s checks into
        one loop: a million-record log reopens in a fraction of the time. It
        stops before any batch record (``replay_segment`` applies those whole)
        and before bytes that are not a valid record. Plain segments are
        replayed in log order, so a record here is newer than every earlier one
        in them; only keys that a compacted segment set (``seqs``, ``hinted``)
        need ``_superseded``.
        """
        layouts = LAYOUTS
        length = len(data)
        base = segment_id << SEGMENT_SHIFT
        locations = self.locations
        expiry = self.expiry
        compare = bool(self.seqs or self.hinted)
        now = self.now
        max_seq = self.max_seq
        log_seq = self.log_seq
        applied = 0
        while length - offset >= MIN_HEADER_SIZE:
            layout = layouts[data[offset + 4]]
            if layout is None or length - offset < layout[1]:
                break
            unpack, head, expiry_at = layout
            crc, tag, seq, klen, vlen = unpack(data, offset)
            rtype = tag & TYPE_MASK
            if (rtype != PUT and rtype != DELETE) or klen > MAX_KEY_SIZE or vlen > MAX_VALUE_SIZE:
                break
            size = head + klen + vlen
            end = offset + size
            if end > length or crc != crc32c(data[offset + 4 : end]):
                break
            expires_at = unpack_expiry(data, offset + expiry_at)[0] if expiry_at else NO_EXPIRY
            if not expires_at >= 0.0 or expires_at == math.inf:
                break
            key = data[offset + head : offset + head + klen]
            location = base | offset << SIZE_BITS | size
            if seq <= log_seq:
                raise _LogOutOfOrder
            log_seq = seq
            offset = end
            applied += 1
            if seq > max_seq:
                max_seq = seq
            if compare and self._superseded(key, seq):
                self._kill(location)
                continue
            if rtype == PUT and (expires_at == NO_EXPIRY or expires_at > now):
                old = locations.get(key)
                locations[key] = location
                if old is not None:
                    self._kill(old)
                if expires_at == NO_EXPIRY:
                    if expiry:
                        expiry.pop(key, None)
                else:
                    expiry[key] = expires_at
            else:
                self._kill(locations.pop(key, None))
                expiry.pop(key, None)
                self._kill(location)
        self.max_seq = max_seq
        self.log_seq = log_seq
        self.records += applied
        return offset

    def _hinted_seq(self, key: bytes) -> int | None:
        """The sequence number of ``key``'s live record, if a hint put it in the index."""
        location = self.locations.get(key)
        if location is None:
            return None
        hint = self.hinted.get(location >> SEGMENT_SHIFT)
        if hint is None:
            return None
        ref = location & REF_MASK
        return hint.seqs[bisect.bisect_left(hint.refs, ref)]

    def apply_hint(self, segment_id: int, hint: Hint) -> None:
        """Apply a compacted segment from its hint: in bulk when its keys are new here.

        Keys met for the first time need no sequence comparison, so the index
        takes them in one C-speed update and only the hint's deletes and
        expiring puts get a Python step each. A hint whose keys overlap what
        was replayed before, or repeat within it, goes record by record.
        """
        keys = hint.keys
        if (self.seqs and not self.seqs.keys().isdisjoint(keys)) or (
            self.locations and not self.locations.keys().isdisjoint(keys)
        ):
            for record in hint.records():
                self.apply(segment_id, record)
            return
        locations = list(map((segment_id << SEGMENT_SHIFT).__or__, hint.refs))
        before = len(self.locations)
        self.locations.update(zip(keys, locations, strict=True))
        if len(self.locations) != before + len(keys):
            # A key repeats within the hint (a log segment's overwrites): the keys were
            # all new here, so removing them restores the index; then go record by record.
            for key in keys:
                self.locations.pop(key, None)
            for record in hint.records():
                self.apply(segment_id, record)
            return
        self.records += len(keys)
        self.max_seq = max(self.max_seq, max(hint.seqs, default=0))
        self.hinted[segment_id] = hint
        gone = [i for i, expires_at in hint.expiring.items() if expires_at <= self.now]
        for i in itertools.chain(hint.deletes, gone):
            self.locations.pop(keys[i], None)
            self.seqs[keys[i]] = hint.seqs[i]
            self._kill(locations[i])
        for i, expires_at in hint.expiring.items():
            if expires_at > self.now:
                self.expiry[keys[i]] = expires_at

    def apply_log_hint(self, segment_id: int, hint: Hint, in_order: bool) -> None:
        """Apply a log segment from its hint (``engine.loghints``).

        In order, its sequence numbers must follow the log's so far, as a scan
        would check; then ``apply_hint`` (in bulk, or record by record).
        """
        if in_order and len(hint.seqs):
            if hint.seqs[0] <= self.log_seq:
                raise _LogOutOfOrder
            self.log_seq = hint.seqs[-1]
        self.in_log = False
        self.apply_hint(segment_id, hint)


def recover(
    fs: FileSystem,
    directory: str,
    segment_ids: list[int],
    *,
    compacted: Sequence[int] = (),
    mode: RecoveryMode,
    now: float,
    on_segment: Callable[[int], None] | None = None,
    fast: bool = True,
    readonly: bool = False,
) -> RecoveredState:
    """Replay every segment, repairing the newest one's torn tail in place.

    ``compacted`` segments (compaction outputs, replayed first) are read from
    their hint files where those are sound, and scanned otherwise; the newest
    of ``segment_ids`` is the log's active segment. Raises CorruptionError
    where ``mode`` does not accept the damage found.

    ``fast=False`` replays every record by the general path, comparing
    sequence numbers, instead of taking the fused fast path for the log's
    plain runs: the state is the same (a property test holds them to it).

    ``readonly`` (a reader beside an owner, ``engine.follower``) changes
    nothing on disk and treats every segment as sealed: the reader follows the
    active segment itself.
    """
    args = (fs, directory, segment_ids, compacted, mode, now, on_segment)
    if not fast:
        return _recover(*args, False, readonly)
    try:
        return _recover(*args, True, readonly)
    except _LogOutOfOrder:
        # Nothing was changed on disk yet: only the newest segment is ever cut, last.
        log.warning("%s: segment files out of sequence order; replaying by sequence", directory)
        return _recover(*args, False, readonly)


def _recover(
    fs: FileSystem,
    directory: str,
    segment_ids: list[int],
    compacted: Sequence[int],
    mode: RecoveryMode,
    now: float,
    on_segment: Callable[[int], None] | None,
    in_order: bool,
    readonly: bool,
) -> RecoveredState:
    """``recover``, trusting the log's file order to be its sequence order if ``in_order``.

    In order, plain puts and deletes take ``apply_plain_run``'s fast path, and a
    record whose sequence number goes backwards raises ``_LogOutOfOrder``.
    """
    replay = _Replayer(now)
    ordered = [*compacted, *segment_ids]
    report = RecoveryReport(mode=mode, segments=len(ordered))
    sizes: dict[int, int] = {}
    for position, segment_id in enumerate(ordered):
        last = position == len(ordered) - 1
        newest = last and bool(segment_ids) and not readonly
        hint = read_hint(fs, directory, segment_id) if position < len(compacted) else None
        # A reader never trusts the newest segment's hint: the owner may be appending to it.
        if hint is not None:
            replay.apply_hint(segment_id, hint)
        elif position >= len(compacted) and not (readonly and last):
            hint = read_log_hint(fs, directory, segment_id)
            if hint is not None:
                replay.apply_log_hint(segment_id, hint, in_order)
        if hint is not None:
            sizes[segment_id] = hint.segment_bytes
            if on_segment is not None:
                on_segment(segment_id)
            continue
        name = segment_name(segment_id)
        path = os.path.join(directory, name)
        data = fs.read_file(path)
        if newest and is_torn_header(data):
            dropped = len(data.rstrip(b"\0"))
            if dropped:
                log.warning("%s: torn segment header (%d bytes) dropped", name, dropped)
            report.truncated_bytes += dropped
            _truncate(fs, path, 0)
            sizes[segment_id] = 0
            continue
        check_segment_header(data, name)
        # Compacted segments hold records of any age: only the log proper is in order.
        replay.in_log = in_order and position >= len(compacted)
        plain_run = replay.apply_plain_run if replay.in_log else None
        end = replay_segment(replay, segment_id, data, name, newest, mode, report, plain_run)
        if end < len(data) and not readonly:
            _truncate(fs, path, end)
            data = data[:end]
        sizes[segment_id] = len(data)
        if mode == "point_in_time" and report.damage:
            for later in ordered[position + 1 :] if not readonly else ():
                _quarantine(fs, directory, later, report)
            break
        if on_segment is not None:
            on_segment(segment_id)
    if sizes and not readonly:
        # After a SIGKILL the newest segment (the last one replayed) and the directory
        # may hold bytes and names that are in the page cache only: make what recovery
        # serves durable before anything new is acknowledged on top of it.
        _fsync(fs, os.path.join(directory, segment_name(next(reversed(sizes)))))
        fs.fsync_dir(directory)
    report.records = replay.records
    index = KeyIndex.over(replay.locations)
    return RecoveredState(index, replay.expiry, replay.dead, sizes, replay.max_seq, report)


class DamagePolicy:
    """The ``Reporter`` of recovery and compaction: what each recovery mode does with damage.

    A torn tail of the newest segment (garbage or an unwritten gap at its end)
    is cut, unless ``absolute_consistency``; other damage is skipped,
    recovered up to, or raised, as the mode says. Everything is counted in
    ``report``.
    """

    def __init__(self, name: str, mode: RecoveryMode, report: RecoveryReport) -> None:
        self.name = name
        self.mode = mode
        self.report = report

    def damaged(self, damage: DamagedRegion) -> bool:
        mode = self.mode
        end = damage.offset
        if damage.kind in (UNUSED, TORN_TAIL) or (
            damage.kind == UNWRITTEN_GAP and mode != "skip_any_corrupted"
        ):
            if mode == "absolute_consistency":
                raise CorruptionError(
                    f"{self.name}: torn tail at offset {end} ({damage.size - end} bytes); "
                    "absolute_consistency accepts no damage"
                )
            return False
        where = f"{self.name}: damaged record at offset {end}"
        detail = "followed by valid records" if damage.resume is not None else "in a sealed segment"
        if mode == "skip_any_corrupted":
            self.report.skipped_bytes += damage.length
            self.report.damage.append(f"{where} ({detail}): skipped {damage.length} bytes")
            log.warning("%s (%s): skipped %d bytes", where, detail, damage.length)
            return True
        if mode == "point_in_time":
            self.report.damage.append(f"{where} ({detail}): recovered up to it")
            log.warning("%s (%s): point-in-time recovery stops here", where, detail)
            return False
        raise CorruptionError(f"{where} ({detail}); open with another recovery mode to salvage")

    def incomplete_batch(
        self, members: list[ScannedRecord], marker: ScannedRecord | None, why: str
    ) -> None:
        self.report.incomplete_batches += 1


def replay_segment(
    sink: RecordSink,
    segment_id: int,
    data: bytes,
    name: str,
    newest: bool,
    mode: RecoveryMode,
    report: RecoveryReport,
    plain_run: Callable[[int, bytes, int], int] | None = None,
) -> int:
    """Apply one segment's committed records to ``sink``; return the length the file should keep.

    ``plain_run``, if given, applies a run of plain puts and deletes faster than
    ``sink.apply`` one by one (``_Replayer.apply_plain_run``); the reader never
    calls it inside a batch.
    """
    fast_run = functools.partial(plain_run, segment_id) if plain_run is not None else None
    reader = SegmentReader(data, DamagePolicy(name, mode, report), newest=newest, fast_run=fast_run)
    apply = sink.apply
    for record in reader:
        apply(segment_id, record)
    end = reader.end
    # The active segment is reserved ahead in zeros; only non-zero bytes were ever written.
    dropped = len(data[end:].rstrip(b"\0"))
    if dropped:
        report.truncated_bytes += dropped
        log.warning("%s: dropped %d bytes of torn tail at offset %d", name, dropped, end)
    return end


def _fsync(fs: FileSystem, path: str) -> None:
    handle = fs.open(path)
    try:
        handle.fsync()
    finally:
        handle.close()


def _truncate(fs: FileSystem, path: str, size: int) -> None:
    """Cut a file to ``size`` durably, before anything is appended after it."""
    handle = fs.open(path)
    try:
        handle.truncate(size)
        handle.fsync()
    finally:
        handle.close()


def _quarantine(fs: FileSystem, directory: str, segment_id: int, report: RecoveryReport) -> None:
    """Move a segment aside (never delete it) so later opens do not replay it."""
    name = segment_name(segment_id)
    target = name + ".quarantined"
    fs.replace(os.path.join(directory, name), os.path.join(directory, target))
    hint = os.path.join(directory, log_hint_name(segment_id))
    if fs.exists(hint):  # a later segment of this id must never meet it
        fs.unlink(hint)
    fs.fsync_dir(directory)
    report.quarantined_segments.append(target)
    log.warning("%s: moved aside as %s after point-in-time recovery", name, target)
