"""The [partition] section: which topics a partitioned collector subscribes to, and the
clear error for each way of getting it wrong. Pure."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from collector.acks import AckQueue
from collector.config import CollectorConfig, PartitionSection
from collector.mqtt_in import MqttIn


def _filters(raw: dict[str, object], announce: bytes | None = b"{}") -> list[str]:
    return MqttIn(CollectorConfig.model_validate(raw), AckQueue(), announce=announce).filters


def test_unpartitioned_collector_subscribes_as_before() -> None:
    assert _filters({}) == ["xanet/v1/+/+/+/telemetry", "xanet/v1/+/+/+/status",
                            "xanet/v1/+/+/+/batch"]
    assert _filters({"collector": {"province": "08"}}, announce=None) == [
        "xanet/v1/08/+/+/telemetry", "xanet/v1/08/+/+/status"]
    # An id alone (no provinces) keeps [collector] province.
    assert _filters({"collector": {"province": "08"}, "partition": {"id": "p08"}},
                    announce=None) == ["xanet/v1/08/+/+/telemetry", "xanet/v1/08/+/+/status"]


def test_provinces_one_filter_each_per_kind() -> None:
    assert _filters({"partition": {"id": "north", "provinces": ["01", "02"]}}) == [
        "xanet/v1/01/+/+/telemetry", "xanet/v1/02/+/+/telemetry",
        "xanet/v1/01/+/+/status", "xanet/v1/02/+/+/status",
        "xanet/v1/01/+/+/batch", "xanet/v1/02/+/+/batch"]


def test_communes_of_one_province() -> None:
    assert _filters({"partition": {"id": "hcm-a", "provinces": ["79"],
                                   "communes": ["26734", "26737"]}}, announce=None) == [
        "xanet/v1/79/26734/+/telemetry", "xanet/v1/79/26737/+/telemetry",
        "xanet/v1/79/26734/+/status", "xanet/v1/79/26737/+/status"]


@pytest.mark.parametrize(("raw", "says"), [
    ({"provinces": ["01", "02"], "communes": ["x"]},
     "communes need exactly one province in provinces (given 2)"),
    ({"communes": ["x"]}, "communes need exactly one province in provinces (given 0)"),
    ({"provinces": ["0+1"]}, "provinces: '0+1' not usable in a topic"),
    ({"provinces": ["+"]}, "provinces: '+' not usable in a topic"),
    ({"provinces": ["79"], "communes": ["a/b"]}, "communes: 'a/b' not usable in a topic"),
    ({"provinces": ["01", "01"]}, "provinces: 01 given twice"),
    ({"id": "a b"}, "id"),
    ({"keepalive_s": 0}, "keepalive_s"),
    ({"password": {"env": "X"}}, "password given without username"),
])
def test_bad_partition_is_a_clear_error(raw: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)):
        PartitionSection.model_validate(raw)


def test_provinces_in_two_places_refused() -> None:
    with pytest.raises(ValidationError, match=r"\[partition\] provinces or in \[collector\]"):
        CollectorConfig.model_validate({"collector": {"province": "08"},
                                        "partition": {"provinces": ["08"]}})


def test_default_is_not_partitioned() -> None:
    p = CollectorConfig().partition
    assert p.id is None and p.scopes("+") == [("+", "+")]


@pytest.mark.parametrize(("partition", "says"), [
    ({"id": "p08"}, "[partition] username is needed with [mqtt] username"),
    ({"id": "p08", "username": "core-a"}, "[partition] username must differ"),
])
def test_partition_user_is_its_own(partition: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)):
        CollectorConfig.model_validate({"mqtt": {"username": "core-a"},
                                        "partition": partition})
    CollectorConfig.model_validate({"mqtt": {"username": "core-a"},
                                    "partition": {"id": "p08", "username": "part-p08"}})
