from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xanet import topics, wire

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
