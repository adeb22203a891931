"""An SMTP sink (aiosmtpd) on a free loopback port that keeps every message it receives."""

from __future__ import annotations

import email
import email.message
import os
import socket
import sys

from lab.base import Daemon


class SmtpSink(Daemon):
    """aiosmtpd on 127.0.0.1:port saving every message into a Maildir.

    Uses aiosmtpd's own ``aiosmtpd.handlers.Mailbox`` handler
    (``python -m aiosmtpd -n -l HOST:PORT -c aiosmtpd.handlers.Mailbox DIR``).
    ``messages()`` returns the received messages (``email.message.Message``,
    oldest first). Readiness: the SMTP ``220`` greeting.
    """

    name = "smtp-sink"
    start_timeout_s = 20.0

    def __init__(self, workdir: str | os.PathLike[str], port: int | None = None):
        super().__init__(workdir, port)
        self.maildir = self.workdir / "maildir"

    def _command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"{self.host}:{self.port}",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            str(self.maildir),
        ]

    def _ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                s.settimeout(2.0)
                ok = s.recv(512).startswith(b"220")
                if ok:
                    s.sendall(b"QUIT\r\n")
                return ok
        except OSError:
            return False

    def messages(self) -> list[email.message.Message]:
        files = [
            f
            for sub in ("new", "cur")
            if (self.maildir / sub).is_dir()
            for f in (self.maildir / sub).iterdir()
        ]
        files.sort(key=lambda f: (f.stat().st_mtime_ns, f.name))
        return [email.message_from_bytes(f.read_bytes()) for f in files]
