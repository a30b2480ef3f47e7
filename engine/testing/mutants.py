"""Mutants: the engine with one durability step removed, to prove the crash checks catch it.

A harness that catches nothing proves nothing. Each mutant breaks one step the
durability rules require, without touching the engine's code:

* ``drop``: a file operation issued from one call site in the engine (an
  fsync, a directory fsync, a truncate) is silently not performed;
* ``defer``: it is performed only after the *next* file operation, so the
  order the engine relies on is swapped (for example an fsync that should
  precede an acknowledgement follows it);
* ``crc``: records are checksummed over their header fields only, as if the
  CRC did not cover the key and value.

File-level mutants are a ``MutantFileSystem`` wrapped around the simulator's
file system. A call site is named by the engine function that issued the
operation (``engine.writer.SegmentWriter._fsync_active``), found by walking
the stack; ``discover_sites`` runs a workload and lists every site, so new
fsyncs (compaction's, say) get their mutants without anyone listing them.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Final, overload

import crc32c as crc32c_module

from engine.format import KEY_AT
from engine.fs import FileHandle, FileSystem, Lock, Mapping
from engine.testing.memfs import MemoryFileSystem

#: File operations whose removal or reordering makes a mutant.
MUTABLE_OPS: Final = ("fsync", "fsync_dir", "truncate")
#: The bytes of a version-1 record's header after its CRC (type, seq, expiry, lengths).
_HEADER_FIELDS: Final = 25
#: makedirs fsyncs inside the file system; its site is named for the engine call.
MAKEDIRS: Final = "makedirs"


@dataclass(frozen=True, order=True)
class Mutant:
    """One removed or reordered step: ``action`` on ``op`` issued from ``site``."""

    action: str  # "drop", "defer" or "crc"
    op: str
    site: str

    @property
    def name(self) -> str:
        if self.action == "crc":
            return "crc covers the header only"
        return f"{self.action} {self.op} in {self.site}"

    @property
    def rule(self) -> str:
        """The durability rule this mutant breaks, in words."""
        if self.action == "crc":
            return "a record's CRC covers its key and value"
        if self.action == "defer":
            return ORDERING.get((self.op, self.site), "this step's order")
        what = {"fsync": "the fsync", "fsync_dir": "the directory fsync", "truncate": "the cut"}
        return f"{what.get(self.op, self.op)} in {self.site.rsplit('.', 1)[-1]} happens"

    def wrap(self, fs: FileSystem) -> FileSystem:
        """``fs`` with this mutant applied (the CRC mutant needs ``weakened_crc`` instead)."""
        return fs if self.action == "crc" else MutantFileSystem(fs, self)

    def __str__(self) -> str:
        return self.name


CRC_MUTANT: Final = Mutant("crc", "crc", "engine.format")


def caller_site() -> str:
    """The engine function (module.qualname) that issued the current file operation."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith("engine.") and not (
            module.startswith("engine.testing") or module == "engine.fs"
        ):
            return f"{module}.{frame.f_code.co_qualname}"
        frame = frame.f_back
    return "outside the engine"


class _Interceptor:
    """Shared by the wrapped file system, its handles and mappings: decides each op's fate."""

    def __init__(self, mutant: Mutant | None, sites: set[tuple[str, str]]) -> None:
        self.mutant = mutant
        self.deferred: list[Callable[[], object]] = []
        self.hits = 0
        self.sites = sites

    def run(
        self,
        op: str,
        perform: Callable[[], object],
        *,
        trigger: bool = True,
        late: Callable[[], object] | None = None,
    ) -> object:
        """Perform (or drop, or defer) ``op``; then whatever was deferred until an op passed.

        ``late`` is how to perform ``op`` once deferred, if its handle may be closed by then.
        """
        site = caller_site() if op in MUTABLE_OPS else ""
        if op in MUTABLE_OPS:
            self.sites.add((op, site))
        if not trigger:
            return perform()
        queued, self.deferred = self.deferred, []
        mutant = self.mutant
        result: object = None
        if mutant is not None and mutant.op == op and mutant.site == site:
            self.hits += 1
            if mutant.action == "defer":
                self.deferred.append(late or perform)
        else:
            result = perform()
        for late in queued:
            late()
        return result


class MutantMapping:
    """A mapping whose stores count as operations (they release deferred ones)."""

    def __init__(self, inner: Mapping, interceptor: _Interceptor) -> None:
        self._inner = inner
        self._interceptor = interceptor

    @overload
    def __getitem__(self, index: int, /) -> int: ...

    @overload
    def __getitem__(self, index: slice, /) -> bytes: ...

    def __getitem__(self, index: int | slice, /) -> int | bytes:
        return self._inner[index]

    def __setitem__(self, index: slice, value: bytes, /) -> None:
        self._interceptor.run("store", lambda: self._inner.__setitem__(index, value))

    def __len__(self) -> int:
        return len(self._inner)

    def resize(self, size: int, /) -> None:
        self._interceptor.run("resize", lambda: self._inner.resize(size))

    def close(self) -> None:
        self._inner.close()


class MutantFile:
    """A file handle whose mutating calls go through the interceptor."""

    def __init__(
        self, inner: FileHandle, interceptor: _Interceptor, fs: FileSystem, path: str
    ) -> None:
        self._inner = inner
        self._interceptor = interceptor
        self._fs = fs
        self._path = path

    def _late_fsync(self) -> None:
        """A deferred fsync, when the engine may have closed this handle meanwhile."""
        if self._fs.exists(self._path):
            handle = self._fs.open(self._path)
            handle.fsync()
            handle.close()

    def write(self, data: bytes) -> int:
        self._interceptor.run("write", lambda: self._inner.write(data))
        return len(data)

    def pread(self, size: int, offset: int) -> bytes:
        return self._inner.pread(size, offset)

    def fsync(self) -> None:
        self._interceptor.run("fsync", self._inner.fsync, late=self._late_fsync)

    def truncate(self, size: int) -> None:
        self._interceptor.run("truncate", lambda: self._inner.truncate(size))

    def size(self) -> int:
        return self._inner.size()

    def allocate(self, size: int) -> None:
        self._interceptor.run("allocate", lambda: self._inner.allocate(size))

    def map(self, *, writable: bool) -> MutantMapping:
        return MutantMapping(self._inner.map(writable=writable), self._interceptor)

    def close(self) -> None:
        self._inner.close()


class MutantFileSystem:
    """A ``FileSystem`` that drops or defers one operation at one call site.

    With ``mutant=None`` it changes nothing and only records the call sites of
    every fsync, directory fsync and truncate in ``sites``.
    """

    def __init__(
        self,
        inner: FileSystem,
        mutant: Mutant | None = None,
        *,
        sites: set[tuple[str, str]] | None = None,
    ) -> None:
        self.inner = inner
        self._interceptor = _Interceptor(mutant, sites if sites is not None else set())

    @property
    def sites(self) -> set[tuple[str, str]]:
        return self._interceptor.sites

    @property
    def hits(self) -> int:
        """How many times the mutated step was reached."""
        return self._interceptor.hits

    def open(self, path: str, *, create: bool = False) -> MutantFile:
        handle = self._interceptor.run(
            "open",
            lambda: self.inner.open(path, create=create),
            trigger=create and not self.inner.exists(path),
        )
        return MutantFile(handle, self._interceptor, self.inner, path)  # type: ignore[arg-type]

    def read_file(self, path: str) -> bytes:
        return self.inner.read_file(path)

    def listdir(self, path: str) -> list[str]:
        return self.inner.listdir(path)

    def exists(self, path: str) -> bool:
        return self.inner.exists(path)

    def free_bytes(self, path: str) -> int:
        return self.inner.free_bytes(path)

    def makedirs(self, path: str) -> None:
        interceptor = self._interceptor
        site = caller_site()
        interceptor.sites.add(("fsync_dir", f"{site} via {MAKEDIRS}"))
        mutant = interceptor.mutant
        if (
            mutant is not None
            and mutant.op == "fsync_dir"
            and mutant.site == f"{site} via {MAKEDIRS}"
            and isinstance(self.inner, MemoryFileSystem)
        ):
            interceptor.hits += 1
            inner = self.inner
            late: list[str] = []
            vars(inner)["fsync_dir"] = late.append  # the instance attribute shadows the method
            try:
                interceptor.run("mkdir", lambda: inner.makedirs(path))
            finally:
                del vars(inner)["fsync_dir"]
            if mutant.action == "defer":
                interceptor.deferred += [lambda d=d: inner.fsync_dir(d) for d in late]  # type: ignore[misc]
            return
        interceptor.run("mkdir", lambda: self.inner.makedirs(path))

    def replace(self, src: str, dst: str) -> None:
        self._interceptor.run("replace", lambda: self.inner.replace(src, dst))

    def unlink(self, path: str) -> None:
        self._interceptor.run("unlink", lambda: self.inner.unlink(path))

    def link(self, src: str, dst: str) -> None:
        self._interceptor.run("link", lambda: self.inner.link(src, dst))

    def fsync_dir(self, path: str) -> None:
        self._interceptor.run("fsync_dir", lambda: self.inner.fsync_dir(path))

    def lock(self, path: str) -> Lock:
        return self.inner.lock(path)


class SiteRecorder:
    """A ``wrap`` for ``Checker`` that changes nothing and records every call site."""

    def __init__(self) -> None:
        self.sites: set[tuple[str, str]] = set()

    def __call__(self, fs: FileSystem) -> FileSystem:
        return MutantFileSystem(fs, sites=self.sites)


#: Ordering rules, by the step that must come first: deferring it past the next file
#: operation breaks the rule.
ORDERING: Final = {
    ("fsync", "engine.writer.SegmentWriter._fsync_active"): (
        "a durable write is acknowledged only after its fsync"
    ),
    ("fsync", "engine.writer.SegmentWriter.roll_over"): (
        "the old segment is sealed before the next one is created"
    ),
}

#: Mutants that no crash can tell from the real engine, and why. They are not
#: counted; the deep run hunts them anyway and fails if one is ever caught.
EQUIVALENT: Final = {
    "drop fsync in engine.writer.SegmentWriter.close": (
        "close cuts the active segment's reserved zeros and fsyncs the cut; without that "
        "fsync a power cut leaves zeros past the newest segment's last record, which "
        "recovery reads as reserved space, and recovery fsyncs the newest segment before "
        "anything is appended, so the zeros never end up inside a sealed segment"
    ),
    "drop fsync in engine.recovery._truncate": (
        "recovery fsyncs the last segment it replayed, the one it cut, before anything is "
        "appended, which makes the cut durable too"
    ),
    "drop fsync in engine.hints.write_hint": (
        "a hint is checked against its CRC and its segment on every open; a hint a power "
        "cut tore or lost is ignored and its segment scanned instead (by design)"
    ),
    "drop fsync in engine.loghints.write_log_hints": (
        "a log hint is checked against its CRC and every byte of its segment on every "
        "open; one a power cut tore or lost is ignored and its segment scanned (by design)"
    ),
    "drop fsync_dir in engine.loghints.write_log_hints": (
        "a log hint whose rename a power cut undoes is missing or the older one, which "
        "matches its segment exactly or is ignored; either way the segment's records are read"
    ),
    "drop fsync_dir in engine.compaction.compactor.Compactor._retire": (
        "inputs whose deletion a power cut undoes are listed as dropped in the committed "
        "manifest, and the next open deletes them again; a later commit's directory fsync "
        "makes the deletions durable first"
    ),
    "drop fsync_dir in engine.manifest.open_manifest": (
        "leftovers whose deletion a power cut undoes are leftovers again, deleted by the next open"
    ),
}


def mutants_for(sites: set[tuple[str, str]]) -> list[Mutant]:
    """The mutants of the discovered sites, and the CRC mutant.

    Every fsync and directory fsync is dropped in turn; the truncates of
    recovery are dropped (a torn tail must be cut before appending after it);
    the steps of ``ORDERING`` are deferred past the next operation.
    """
    found: set[Mutant] = set()
    for op, site in sites:
        if op in ("fsync", "fsync_dir") or (
            op == "truncate" and site.startswith("engine.recovery.")
        ):
            found.add(Mutant("drop", op, site))
        if (op, site) in ORDERING:
            found.add(Mutant("defer", op, site))
    return [*sorted(found), CRC_MUTANT]


def counted(mutants: list[Mutant]) -> tuple[list[Mutant], list[Mutant]]:
    """Split into the mutants that must be caught and the documented equivalent ones."""
    return (
        [m for m in mutants if m.name not in EQUIVALENT],
        [m for m in mutants if m.name in EQUIVALENT],
    )


def _header_only(real: Callable[..., int]) -> Callable[..., int]:
    def weak(data: bytes | bytearray | memoryview, value: int = 0) -> int:
        body = bytes(data)
        # A record's body starts with its tag, which gives its header's size (the CRC's
        # 4 bytes included); anything else is cut as a version-1 header would be.
        head = KEY_AT[body[0]] - 4 if body and KEY_AT[body[0]] else _HEADER_FIELDS
        return real(body[:head], value)

    return weak


@contextlib.contextmanager
def weakened_crc() -> Iterator[None]:
    """Make every engine module checksum records over their header fields only."""
    real = crc32c_module.crc32c
    weak = _header_only(real)
    patched = []
    for name, module in list(sys.modules.items()):
        if name.startswith("engine.") and getattr(module, "crc32c", None) is real:
            module.crc32c = weak  # type: ignore[attr-defined]
            patched.append(module)
    try:
        yield
    finally:
        for module in patched:
            module.crc32c = real  # type: ignore[attr-defined]


@contextlib.contextmanager
def applied(mutant: Mutant) -> Iterator[Callable[[FileSystem], FileSystem]]:
    """Apply ``mutant`` for the duration: yields the wrapper to give ``Checker(wrap=...)``."""
    if mutant.action == "crc":
        with weakened_crc():
            yield lambda fs: fs
    else:
        yield mutant.wrap
