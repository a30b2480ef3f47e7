"""``default_store()``: one process-wide ``LogStore`` (go-micro's ``store.DefaultStore``)."""

from __future__ import annotations

import atexit
import os
import threading

from store_api.logstore import LogStore

_lock = threading.Lock()
_store: LogStore | None = None
_owner_pid = 0


def default_store() -> LogStore:
    """The process-wide store in ``default_dir()``, opened (and the directory made) on first call.

    Later calls return the same object. A forked child gets its own store rather
    than sharing the parent's open files, and so a clear ``LockedError`` while
    the parent holds the directory. The store is disconnected at interpreter exit.
    """
    global _store, _owner_pid
    store = _store
    if store is not None and _owner_pid == os.getpid():
        return store
    with _lock:
        if _store is None or _owner_pid != os.getpid():
            _store = LogStore()
            _owner_pid = os.getpid()
            atexit.register(_disconnect_at_exit, _store, _owner_pid)
        return _store


def _disconnect_at_exit(store: LogStore, pid: int) -> None:
    """Disconnect ``store`` if this is the process that opened it.

    A forked child inherits the parent's exit handlers and open files; closing
    the parent's engine from the child would release the parent's directory
    lock (an ``flock`` belongs to the shared open file), so the child leaves it.
    """
    if os.getpid() == pid:
        store.disconnect()
