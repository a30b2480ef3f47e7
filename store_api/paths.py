"""Where the default store lives: ``$SEGLOG_DIR``, else the XDG per-user data directory."""

from __future__ import annotations

import os


def default_dir() -> str:
    """The default store directory; computed on each call, never created here.

    ``$SEGLOG_DIR`` (the directory itself) wins; otherwise ``seglog`` inside
    ``$XDG_DATA_HOME`` when that is set to an absolute path (the XDG Base
    Directory spec says to ignore relative ones), else ``~/.local/share/seglog``.
    """
    override = os.environ.get("SEGLOG_DIR")
    if override:
        return os.path.abspath(os.path.expanduser(override))
    base = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "seglog")
