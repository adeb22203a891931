"""Network namespaces for field-fault tests: cut, filter and witness real traffic.

Everything here is sent from inside namespaces this module created, to addresses
inside them (198.18.0.0/15, the RFC 2544 benchmarking range, on veth pairs that
never touch the root namespace). No pytest, so tests, benches and demos share it.

    with Lab() as lab:                       # skip first if not root: lab_skip_reason()
        site, dev = lab.netns("site"), lab.netns("dev")
        site_ip, dev_ip = lab.link(site, dev)        # veth pair, /30, both up
        snmpd = NetnsSnmpd(tmp / "snmpd", dev, dev_ip).start()
        dev.drop(proto="udp", dport=161)             # nftables inside "dev": SNMP filtered
        dev.drop()                                   # everything: the host is unreachable
        dev.undrop()                                 # remove every drop rule again
        lab.set_link(site, dev, up=False)            # the veth pair down: a cut fibre
        site.call(some_function, arg)                # runs in a thread inside "site"
        site.popen(["xanet", "agent", ...])          # a process inside "site"
        relay = lab.relay_to_root(site, broker.port) # site's 127.0.0.1:port → root's 127.0.0.1:port

Cleanup is always done: ``Lab.close()`` (its ``__exit__``) stops every process it
started (by its pid), deletes every namespace it created (their veths go with them)
and removes the relay's unix sockets; an ``atexit`` hook does the same if a test
run dies first. Namespace names carry the pid (``xanet-<pid>-<n>-<tag>``) so runs
in parallel never collide.
"""

from __future__ import annotations

import atexit
import ctypes
import itertools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from lab.snmpd import OID_SYS_UPTIME, Snmpd, snmp_env

T = TypeVar("T")

_CLONE_NEWNET = 0x40000000
_counter = itertools.count(1)
_LIVE: set[Lab] = set()
_LIVE_LOCK = threading.Lock()
#: 198.18.0.0/15 (RFC 2544): one /30 per link, 198.18.<n // 64>.<(n % 64) * 4 + 1|2>.
_links = itertools.count(0)


class NetnsError(RuntimeError):
    """A namespace command failed; the message holds the command and its stderr."""


def lab_skip_reason() -> str | None:
    """Why namespace tests cannot run here (``None``: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add, veth, nftables)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool!r} is not installed (scripts/install-deps.sh installs it)"
    return None


def _run(cmd: Sequence[str], *, check: bool = True, timeout_s: float = 20.0,
         input_text: str | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout_s,
                             input=input_text, env=env)
    except subprocess.TimeoutExpired as exc:
        raise NetnsError(f"hung: {' '.join(cmd)}") from exc
    if check and out.returncode != 0:
        raise NetnsError(f"failed ({out.returncode}): {' '.join(cmd)}: {out.stderr.strip()}")
    return out


class Netns:
    """One network namespace (loopback up). Created by :meth:`Lab.netns`."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.lab = lab
        self.name = name
        _run(["ip", "netns", "add", name])
        self.run(["ip", "link", "set", "lo", "up"])
        self._nft_ready = False

    # -- running things inside
    def wrap(self, cmd: Sequence[str]) -> list[str]:
        """``cmd`` as a command line that runs inside this namespace."""
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, cmd: Sequence[str], *, check: bool = True, timeout_s: float = 20.0,
            input_text: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside the namespace and wait (text output captured)."""
        return _run(self.wrap(cmd), check=check, timeout_s=timeout_s, input_text=input_text,
                    env=env)

    def popen(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``cmd`` inside the namespace; the lab stops it (by pid) on close."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("start_new_session", True)
        proc: subprocess.Popen[Any] = subprocess.Popen(self.wrap(cmd), **kwargs)
        self.lab.adopt(proc)
        return proc

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a fresh thread that entered this namespace.

        Only that thread moves (setns(2) is per thread): sockets it opens live in the
        namespace, the caller's thread and the rest of the process stay in the root
        one. An ``asyncio.run(...)`` inside ``fn`` runs a whole agent in the namespace.
        """
        result: list[T] = []
        error: list[BaseException] = []

        def body() -> None:
            try:
                self._enter()
                result.append(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the caller's thread, re-raised there
                error.append(exc)

        thread = threading.Thread(target=body, name=f"netns-{self.name}", daemon=True)
        thread.start()
        thread.join()
        if error:
            raise error[0]
        return result[0]

    def _enter(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                raise NetnsError(f"setns({self.name}): {os.strerror(errno)}")
        finally:
            os.close(fd)

    # -- addresses
    def add_address(self, dev: str, cidr: str) -> None:
        self.run(["ip", "addr", "add", cidr, "dev", dev])
        self.run(["ip", "link", "set", dev, "up"])

    # -- nftables inside the namespace
    def _nft_table(self) -> None:
        if self._nft_ready:
            return
        self.run(["nft", "-f", "-"], input_text=(
            "table inet xanet_fault {\n"
            "  chain input { type filter hook input priority 0; policy accept; }\n"
            "  chain output { type filter hook output priority 0; policy accept; }\n"
            "}\n"))
        self._nft_ready = True

    def drop(self, *, proto: str | None = None, dport: int | None = None,
             direction: str = "input") -> None:
        """Drop packets in this namespace (nftables): all of them, or one protocol/port.

        ``drop()`` cuts the namespace off (no ICMP, no SNMP: really unreachable);
        ``drop(proto="udp", dport=161)`` filters SNMP only (the host still answers
        ping). Loopback traffic inside the namespace is never dropped.
        """
        if direction not in ("input", "output"):
            raise ValueError(f"direction must be input or output, not {direction!r}")
        if dport is not None and proto not in ("udp", "tcp"):
            raise ValueError("dport needs proto='udp' or 'tcp'")
        self._nft_table()
        iface = "iifname" if direction == "input" else "oifname"
        match = [iface, "!=", "lo"]
        if proto in ("udp", "tcp"):
            match += [proto, "dport" if direction == "input" else "sport", str(dport)] \
                if dport is not None else ["meta", "l4proto", proto]
        elif proto == "icmp":
            match += ["meta", "l4proto", "icmp"]
        elif proto is not None:
            raise ValueError(f"proto must be udp, tcp, icmp or None, not {proto!r}")
        self.run(["nft", "add", "rule", "inet", "xanet_fault", direction, *match, "drop"])

    def undrop(self) -> None:
        """Remove every drop rule added by :meth:`drop`."""
        if self._nft_ready:
            self.run(["nft", "flush", "table", "inet", "xanet_fault"])

    def delete(self) -> None:
        _run(["ip", "netns", "del", self.name], check=False)

    def __repr__(self) -> str:
        return f"<Netns {self.name}>"


class Relay:
    """A TCP relay from a namespace's 127.0.0.1:port (or ``bind``:port) to the root
    namespace's 127.0.0.1.

    Two socat processes joined by a unix socket (unix sockets cross namespaces):
    one in the root namespace connecting to ``127.0.0.1:root_port``, one inside the
    namespace listening on ``127.0.0.1:port``. So an agent in a namespace reaches the
    root namespace's Mosquitto without any route out of it.
    """

    def __init__(self, lab: Lab, ns: Netns, root_port: int, port: int | None,
                 bind: str = "127.0.0.1") -> None:
        if shutil.which("socat") is None:
            raise NetnsError("socat is not installed (scripts/install-deps.sh installs it)")
        self.port = port if port is not None else root_port
        self.sock = lab.tmp / f"relay-{ns.name}-{self.port}.sock"
        root = subprocess.Popen(
            ["socat", f"UNIX-LISTEN:{self.sock},fork", f"TCP:127.0.0.1:{root_port}"],
            stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        lab.adopt(root)
        self._wait(lambda: self.sock.exists(), f"relay socket {self.sock}")
        self.bind = bind
        ns.popen(["socat", f"TCP-LISTEN:{self.port},bind={bind},fork,reuseaddr",
                  f"UNIX-CONNECT:{self.sock}"], stderr=subprocess.DEVNULL)
        self._wait(lambda: f":{self.port} " in ns.run(["ss", "-Htln"]).stdout,
                   f"relay listener {bind}:{self.port} in {ns.name}")

    @staticmethod
    def _wait(ready: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:

        deadline = time.monotonic() + timeout_s
        while not ready():
            if time.monotonic() > deadline:
                raise NetnsError(f"{what} not ready after {timeout_s:.0f}s")
            time.sleep(0.02)


class Lab:
    """Owns namespaces, veth pairs, processes and relays; :meth:`close` removes them all."""

    def __init__(self) -> None:
        reason = lab_skip_reason()
        if reason:
            raise NetnsError(reason)
        self.namespaces: list[Netns] = []
        #: every veth pair: (a, a's interface, b, b's interface)
        self.links: list[tuple[Netns, str, Netns, str]] = []
        self.procs: list[subprocess.Popen[Any]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="xanet-netns-"))
        with _LIVE_LOCK:
            _LIVE.add(self)

    def netns(self, tag: str) -> Netns:
        ns = Netns(self, f"xanet-{os.getpid()}-{next(_counter)}-{tag}")
        self.namespaces.append(ns)
        return ns

    def link(self, a: Netns, b: Netns) -> tuple[str, str]:
        """A veth pair between ``a`` and ``b`` with a /30 each side; returns (a_ip, b_ip)."""
        n = next(_links)
        if n >= 128 * 64:
            raise NetnsError("out of /30 links in 198.18.0.0/15")
        net = f"198.{18 + n // (256 * 64)}.{(n // 64) % 256}"
        a_ip, b_ip = f"{net}.{(n % 64) * 4 + 1}", f"{net}.{(n % 64) * 4 + 2}"
        tmp_a, tmp_b = f"xva{os.getpid() % 100000}x{n}", f"xvb{os.getpid() % 100000}x{n}"
        a.run(["ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b,
               "netns", b.name])
        a.add_address(tmp_a, f"{a_ip}/30")
        b.add_address(tmp_b, f"{b_ip}/30")
        self.links.append((a, tmp_a, b, tmp_b))
        return a_ip, b_ip

    def set_link(self, a: Netns, b: Netns, *, up: bool) -> None:
        """Every veth pair between ``a`` and ``b`` down (a cut) or up again (both ends)."""
        found = [link for link in self.links if {link[0].name, link[2].name} == {a.name, b.name}]
        if not found:
            raise NetnsError(f"no link between {a.name} and {b.name}")
        for x, x_dev, y, y_dev in found:
            x.run(["ip", "link", "set", x_dev, "up" if up else "down"])
            y.run(["ip", "link", "set", y_dev, "up" if up else "down"])

    def relay_to_root(self, ns: Netns, root_port: int, port: int | None = None,
                      bind: str = "127.0.0.1") -> Relay:
        """``ns``'s ``bind``:``port`` (default 127.0.0.1, same number) → root's
        127.0.0.1:``root_port``. ``bind`` may be an address of ``ns``'s veth, so other
        namespaces reach the root namespace's daemon through ``ns`` (lab/thinlink.py)."""
        return Relay(self, ns, root_port, port, bind)

    def adopt(self, proc: subprocess.Popen[Any]) -> None:
        self.procs.append(proc)

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()
        for ns in reversed(self.namespaces):
            ns.delete()
        self.namespaces.clear()
        self.links.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _close_all() -> None:
    with _LIVE_LOCK:
        labs = list(_LIVE)
    for lab in labs:
        lab.close()


atexit.register(_close_all)


class NetnsSnmpd(Snmpd):
    """net-snmp's snmpd inside a namespace, on ``host`` (an address of that namespace).

    Same users and communities as :class:`lab.snmpd.Snmpd`; the v2c community is
    accepted from any source (only namespaces reach it). Readiness is checked with
    ``snmpget`` run inside the same namespace.
    """

    def __init__(self, workdir: str | os.PathLike[str], ns: Netns, host: str,
                 port: int = 161, **kwargs: Any) -> None:
        super().__init__(workdir, port, **kwargs)
        self.ns = ns
        self.host = host

    def _prepare(self) -> None:
        super()._prepare()
        text = self.conf_path.read_text()
        self.conf_path.write_text(text.replace(f"rocommunity {self.community} {self.host}\n",
                                               f"rocommunity {self.community} default\n"))

    def _command(self) -> list[str]:
        return self.ns.wrap(super()._command())

    def _ready(self) -> bool:
        out = self.ns.run(
            ["snmpget", "-v2c", "-c", self.community, "-t", "0.3", "-r", "0", "-On", "-Oq",
             f"udp:{self.host}:{self.port}", OID_SYS_UPTIME], check=False,
            env=snmp_env())
        return out.returncode == 0 and bool(out.stdout.strip())
