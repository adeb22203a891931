"""Full disks for tests, for real: a small tmpfs (root only) and a filler file.

Tests of what a full disk does (spool, dead letters, outage state) mount one with
:func:`small_tmpfs` and fill it with :func:`fill`; deleting the filler gives the space back.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(parent: Path, size: str, name: str = "tmpfs") -> Iterator[Path]:
    """A tmpfs of ``size`` (``mount -o size=``, e.g. "64k", "1m") mounted at
    ``parent/name``, unmounted on exit; the test is skipped when not root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (make test runs as root)")
    mnt = parent / name
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                   check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill(directory: Path) -> Path:
    """Write a filler file in ``directory`` until its file system is full (ENOSPC);
    return the filler (unlink it to free the space)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler
