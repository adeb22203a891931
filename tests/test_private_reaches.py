"""Where the code may touch aiomqtt and paho, and their internals (a lint, by AST).

* In the product packages only the MQTT edges import aiomqtt or paho: in the collector
  only collector/mqtt_in.py (its data session) and collector/leasemqtt.py (a partition
  member's lease connection, which reaches into no internals); in the agent
  agent/uplink.py (its publisher) and agent/acks.py (the PUBACK reason codes).
* The private attributes of an MQTT client (aiomqtt's ``_client``, ``_queue``,
  ``_disconnected``, ...; paho's ``_sock``, ``_out_packet``, ...) are touched only in
  collector/mqtt_in.py and agent/acks.py: in the product packages, and in the tests,
  bench and demo modules that use an MQTT library; there every such line is marked, on
  the line or the one above, with a comment saying it is private and which aiomqtt/paho
  version it was checked against.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("agent", "collector", "xanet", "dashboards")
SCANNED = (*PRODUCT, "bench", "deploy", "tests", "scripts")
MQTT_LIBRARIES = ("aiomqtt", "paho")
IMPORTS_ALLOWED = {"collector/mqtt_in.py", "agent/acks.py", "agent/uplink.py",
                   "collector/leasemqtt.py",  # a partition member's lease connection
                   "agent/brokerprobe.py",
                   "xanet/configpublish.py"}  # the core's config publisher: one publish
REACHES_ALLOWED = {"collector/mqtt_in.py", "agent/acks.py"}
#: aiomqtt 2.x's and paho 2.x's private attributes worth reaching for.
MQTT_PRIVATES = {
    "_client", "_queue", "_disconnected", "_connected", "_messages", "_pending_calls",
    "_pending_subscribes", "_pending_unsubscribes", "_pending_publishes", "_lock",
    "_sock", "_sockpairR", "_sockpairW", "_in_packet", "_out_packet", "_out_messages",
    "_in_messages", "_max_inflight_messages", "_inflight_messages", "_callback_mutex",
    "_out_message_mutex", "_in_message_mutex", "_manual_ack", "_state", "_thread",
}
MARK = re.compile(r"#.*private.*(aiomqtt|paho)\S*\s+\d", re.IGNORECASE)


def _modules() -> list[Path]:
    out: list[Path] = []
    for top in SCANNED:
        base = ROOT / top
        if base.is_dir():
            out += sorted(p for p in base.rglob("*.py") if ".venv" not in p.parts)
    return out


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _mqtt_imports(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        if any(n.split(".")[0] in MQTT_LIBRARIES for n in names):
            lines.append(node.lineno)
    return lines


def _private_reaches(tree: ast.AST, *, any_private: bool) -> list[int]:
    """Lines reading or writing ``x._name`` on something other than ``self``/``cls``: the
    MQTT privates, or (``any_private``, in a module that imports an MQTT library) any
    underscore attribute."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") \
                or node.attr.startswith("__"):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        if node.attr in MQTT_PRIVATES or any_private:
            lines.append(node.lineno)
    return lines


def test_only_the_mqtt_edges_import_aiomqtt_or_paho() -> None:
    found = []
    for path in _modules():
        rel = _rel(path)
        if rel.split("/")[0] not in PRODUCT or rel in IMPORTS_ALLOWED:
            continue
        found += [f"{rel}:{n}" for n in _mqtt_imports(ast.parse(path.read_text()))]
    assert not found, f"aiomqtt/paho imported outside {sorted(IMPORTS_ALLOWED)}: {found}"


def test_only_the_marked_modules_reach_into_mqtt_clients() -> None:
    found = []
    for path in _modules():
        rel = _rel(path)
        if rel in REACHES_ALLOWED or rel == "tests/test_private_reaches.py":
            continue
        tree = ast.parse(path.read_text())
        imports_mqtt = bool(_mqtt_imports(tree))
        product = rel.split("/")[0] in PRODUCT
        if not product and not imports_mqtt:
            continue  # tests and tools that hold no MQTT client (an SNMP ``_client``...)
        # Product code: a module without an MQTT import may still be handed a client (the
        # named privates); one with an import may reach nothing private of another object.
        found += [f"{rel}:{n}" for n in _private_reaches(
            tree, any_private=product and imports_mqtt)]
    assert not found, ("private attributes reached outside "
                       f"{sorted(REACHES_ALLOWED)}: {found}")


@pytest.mark.parametrize("rel", sorted(REACHES_ALLOWED))
def test_every_private_reach_is_marked_with_why_and_the_version(rel: str) -> None:
    text = (ROOT / rel).read_text()
    source = text.splitlines()
    reaches = _private_reaches(ast.parse(text), any_private=False)
    assert reaches, f"{rel}: no private reach left: take it off the allowed list"
    unmarked = [f"{rel}:{n}: {source[n - 1].strip()}" for n in reaches
                if not (MARK.search(source[n - 1]) or MARK.search(source[n - 2]))]
    assert not unmarked, "mark each private reach: '# private: why (aiomqtt X.Y, paho X.Y)'"


def test_the_lint_sees_a_reach() -> None:
    """The checks above find what they are meant to find (no vacuous pass)."""
    tree = ast.parse("import aiomqtt\nc = aiomqtt.Client('h')\nc._client.ack(1, 1)\n"
                     "self._client = 1\nc._other = 2\n")
    assert _mqtt_imports(tree) == [1]
    assert _private_reaches(tree, any_private=False) == [3]
    assert sorted(_private_reaches(tree, any_private=True)) == [3, 5]
