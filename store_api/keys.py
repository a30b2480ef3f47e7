"""How (database, table, key) become one engine key, and back.

Every component has each NUL escaped as NUL 0x02 and is closed by NUL 0x01;
the joined text is UTF-8 encoded (``surrogatepass``, so every Python ``str``
works)::

    engine key = utf8("k" + esc(database) + "\\x00\\x01" + esc(table) + "\\x00\\x01"
                      + esc(key) + "\\x00\\x01")
    esc(s)     = s.replace("\\x00", "\\x00\\x02")

Why this shape:

* **Injective.** Inside an escaped component NUL is always followed by 0x02, so
  the terminator NUL 0x01 can only end a component: ``("a/b", "c")`` and
  ``("a", "b/c")`` never meet, nor do ``("a\\x00", "b")`` and ``("a", "\\x00b")``.
* **Order-preserving.** The terminator sorts below an escaped NUL (0x01 < 0x02),
  which sorts below every other character, so engine keys sort exactly like
  ``(database, table, key)`` compared as code points (and UTF-8 keeps code
  point order). One table is one contiguous range, and a key prefix inside a
  table is the range starting with ``utf8(namespace + esc(prefix))``, with no
  terminator, which the engine's sorted index answers without touching
  anything outside it.
* **Cheap.** Escape and terminator are ASCII, so the whole key is built as one
  ``str`` and encoded once (``str.replace`` finds nothing and copies nothing in
  the common NUL-free key); the namespace text is computed once per
  (database, table). Building and encoding bytes pieces instead measured
  about three times slower.

The leading tag ``k`` leaves room for other kinds of engine keys later.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

#: Tag of record keys.
RECORD_TAG: Final = "k"
#: Closes every component; sorts below anything a longer component could hold.
TERMINATOR: Final = "\x00\x01"
#: Size of the terminator in the encoded key.
TERMINATOR_SIZE: Final = 2
NUL: Final = "\x00"
ESCAPED_NUL: Final = "\x00\x02"


def escape(text: str) -> str:
    """``text`` with every NUL escaped, without the terminator."""
    return text.replace(NUL, ESCAPED_NUL)


def to_bytes(text: str) -> bytes:
    """UTF-8 of ``text``, lone surrogates included."""
    return text.encode("utf-8", "surrogatepass")


def namespace(database: str, table: str) -> str:
    """The engine-key prefix (as text) shared by every key of one (database, table)."""
    return RECORD_TAG + escape(database) + TERMINATOR + escape(table) + TERMINATOR


def encode_key(space: str, key: str) -> bytes:
    """The engine key of ``key`` inside the namespace ``space``."""
    return to_bytes(space + escape(key) + TERMINATOR)


def decode_keys(space: str, engine_keys: Iterable[bytes]) -> list[str]:
    """The user keys of engine keys that :func:`encode_key` made in ``space``, in order.

    One join, one decode and one split for the lot instead of a slice and a
    decode per key (``list`` of a range cost 1.8x the engine's key scan that
    way). Joined, the keys read ``space esc(k1) T space esc(k2) T ...``; an
    escaped key holds no terminator ``T``, so splitting on ``T + space`` cuts
    exactly between keys. Escaped NULs are undone only if the NUL count says
    some key has one.
    """
    text = b"".join(engine_keys).decode("utf-8", "surrogatepass")
    if not text:
        return []
    separator = TERMINATOR + space
    found = text[len(space) : -TERMINATOR_SIZE].split(separator)
    if text.count(NUL) != len(found) * separator.count(NUL):
        return [key.replace(ESCAPED_NUL, NUL) for key in found]
    return found


def key_prefix(space: str, prefix: str) -> bytes:
    """The engine-key prefix of every key in ``space`` that starts with ``prefix``."""
    return to_bytes(space + escape(prefix))


def split_key(engine_key: bytes) -> tuple[str, str, str]:
    """``(database, table, key)`` of an engine key made by :func:`encode_key`.

    The terminator never occurs inside an escaped component, so splitting on it
    undoes :func:`namespace` and :func:`encode_key` exactly.
    """
    text = engine_key.decode("utf-8", "surrogatepass")
    parts = text[len(RECORD_TAG) :].split(TERMINATOR)
    if not text.startswith(RECORD_TAG) or len(parts) != 4 or parts[3]:
        raise ValueError(f"not a store_api record key: {engine_key!r}")
    database, table, key = (part.replace(ESCAPED_NUL, NUL) for part in parts[:3])
    return database, table, key
