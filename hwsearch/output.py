"""Writing an output file so that a reader never sees half of it and a planted symlink is never
followed.

The report's output directory may be shared (``/tmp``, a web root). Writing ``index.html`` in
place would follow a symlink someone planted there (and overwrite what it points to), and leave
a torn page if the process dies mid-write. So the text goes to a new file beside the target
(``mkstemp``: created exclusively, never through a link), which is then renamed over the target:
``rename`` replaces a symlink itself, not what it points to.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class OutputError(ValueError):
    """The output path cannot be used; the message names it and what is allowed."""


def check_out_dir(path: str | Path) -> Path:
    """``path`` as an output directory: an existing file is an error. Creates nothing (called
    before the work, so a bad ``out`` fails fast)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"`out` {out} is an existing file; allowed: a directory (made if "
                          "missing)")
    if out.is_symlink() and not out.exists():
        raise OutputError(f"`out` {out} is a dangling symlink; allowed: a directory")
    check_writable(out, out)
    return out


def check_writable(out: Path, target: Path) -> None:
    """The directory ``target`` is (or would be made in) can be written by this user: the
    nearest existing one of ``target`` and its parents must be a writable directory.
    ``out`` is the setting's value, named in the error."""
    here = target.absolute()
    while not here.exists() and here != here.parent:
        if here.is_symlink():
            raise OutputError(f"`out` {out}: {here} is a dangling symlink")
        here = here.parent
    if not here.is_dir():
        raise OutputError(f"`out` {out}: {here} is a file, not a directory")
    if not os.access(here, os.W_OK | os.X_OK):
        raise OutputError(f"`out` {out}: cannot write in {here} (permission denied or a "
                          "read-only file system)")


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all, replacing ``path`` (a symlink there is
    replaced, never followed). The file gets the mode a plain ``open`` would give."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise OutputError(f"{path} is a directory; cannot write a file there")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
