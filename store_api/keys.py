"""How (database, table, key) become one engine key, and back.

Each string is UTF-8 encoded (``surrogatepass``, so every Python ``str`` works),
every NUL byte is escaped as ``00 FF`` and the component is closed by ``00 01``::

    engine key = b"k" + enc(database) + enc(table) + enc(key)
    enc(s)     = utf8(s).replace(b"\\x00", b"\\x00\\xff") + b"\\x00\\x01"

Why this shape:

* **Injective.** Inside an escaped component ``00`` is always followed by
  ``FF``, so the terminator ``00 01`` can only be the end of the component:
  ``("a/b", "c")`` and ``("a", "b/c")`` never meet.
* **Order-preserving.** ``00 01`` sorts below every byte a longer string could
  continue with (``01..FF`` or an escaped ``00 FF``), so engine keys sort exactly
  like ``(database, table, key)`` compared as code points. One table is one
  contiguous range, and a key prefix inside a table is the range starting with
  ``namespace + esc(prefix)`` (no terminator), which the engine's sorted index
  answers without looking at anything outside it.
* **Cheap.** A key without NUL costs one ``encode`` and one ``replace`` that
  finds nothing; the namespace part is computed once per (database, table).

The leading tag byte leaves room for other kinds of engine keys later.
"""

from __future__ import annotations

from typing import Final

#: Tag byte of record keys.
RECORD_TAG: Final = b"k"
#: Closes every component; sorts below anything a longer component could hold.
TERMINATOR: Final = b"\x00\x01"
TERMINATOR_SIZE: Final = len(TERMINATOR)


def escape(text: str) -> bytes:
    """UTF-8 bytes of ``text`` with NUL escaped, without the terminator."""
    return text.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\xff")


def unescape(data: bytes) -> str:
    """Inverse of :func:`escape`."""
    return data.replace(b"\x00\xff", b"\x00").decode("utf-8", "surrogatepass")


def namespace(database: str, table: str) -> bytes:
    """The engine-key prefix shared by every key of one (database, table)."""
    return RECORD_TAG + escape(database) + TERMINATOR + escape(table) + TERMINATOR


def encode_key(space: bytes, key: str) -> bytes:
    """The engine key of ``key`` inside the namespace ``space``."""
    return space + escape(key) + TERMINATOR


def decode_key(space_len: int, engine_key: bytes) -> str:
    """The user key of an engine key whose namespace is ``space_len`` bytes long."""
    return unescape(engine_key[space_len:-TERMINATOR_SIZE])


def key_prefix(space: bytes, prefix: str) -> bytes:
    """The engine-key prefix of every key in ``space`` that starts with ``prefix``."""
    return space + escape(prefix)
