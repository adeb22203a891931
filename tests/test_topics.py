from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xanet import ids, topics, wire

idents = st.from_regex(wire.IDENT_PATTERN, fullmatch=True)


@given(idents, idents, idents, st.sampled_from(topics.KINDS))
def test_parse_build_roundtrip(p: str, c: str, s: str, kind: topics.Kind) -> None:
    parsed = topics.parse(topics.build(p, c, s, kind))
    assert (parsed.province, parsed.commune, parsed.site, parsed.kind) == (p, c, s, kind)


@pytest.mark.parametrize("bad", ["ha/giang", "+", "#", "", "a b", "x" * 65])
def test_build_refuses_unsafe_levels(bad: str) -> None:
    with pytest.raises(topics.TopicError):
        topics.build("hg", bad, "site", "telemetry")


@pytest.mark.parametrize("topic", [
    "xanet/v1/hg/c1/s1",                    # too short
    "xanet/v2/hg/c1/s1/telemetry",          # other version
    "other/v1/hg/c1/s1/telemetry",
    "xanet/v1/hg/c1/s1/metrics",            # unknown kind
    "xanet/v1/hg/c 1/s1/telemetry",
    "xanet/v1/hg/c1/s1/telemetry/extra",
])
def test_parse_rejects(topic: str) -> None:
    with pytest.raises(topics.TopicError):
        topics.parse(topic)


def test_subscription_filters() -> None:
    assert topics.subscription("telemetry") == "xanet/v1/+/+/+/telemetry"
    assert topics.subscription("status", "hg") == "xanet/v1/hg/+/+/status"


# -- one id grammar (xanet.ids) for topics, tags, configs and the inventory ----------------

canonical_ids = st.from_regex(ids.CANONICAL_ID_PATTERN, fullmatch=True)


@given(canonical_ids)
def test_every_inventory_id_is_a_topic_level(ident: str) -> None:
    assert ids.is_canonical(ident) and ids.is_ident(ident)
    assert topics.parse(topics.build(ident, ident, ident, "status")).site == ident


@pytest.mark.parametrize("bad", ["a\n", "a\r\n", "\na"])
def test_a_trailing_newline_is_not_an_id(bad: str) -> None:
    assert not ids.is_ident(bad) and not ids.is_canonical(bad)
    with pytest.raises(topics.TopicError):
        topics.build("hg", bad, "site", "telemetry")


def test_the_grammar_has_one_home() -> None:
    from agent import config as agent_config
    from collector import config as collector_config
    from xanet.inventory import model as inventory_model

    assert wire.IDENT_PATTERN is ids.IDENT_PATTERN and wire.Ident is ids.Ident
    assert agent_config.Ident is ids.Ident and collector_config.Ident is ids.Ident
    assert inventory_model.Id is ids.CanonicalId
    assert inventory_model.TOPIC_SAFE_ID_PATTERN is ids.CANONICAL_ID_PATTERN


def test_the_credentials_script_uses_the_same_grammar() -> None:
    """The shell script cannot import xanet.ids: its copy is kept equal here."""
    import re
    from pathlib import Path

    script = (Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"
              / "issue-agent-credentials.sh").read_text()
    (ident,) = re.findall(r"^IDENT='(.+)'$", script, re.M)
    assert ident == ids.IDENT_PATTERN
    (agent,) = re.findall(r"^\[\[ \$AGENT =~ (\S+) \]\]", script, re.M)
    # the agent id is also a Mosquitto user name: the same grammar without ':'
    assert agent == ids.IDENT_PATTERN.replace(":", "")
