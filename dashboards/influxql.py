"""An InfluxQL target for grafana-foundation-sdk, which ships no InfluxDB query type.

Grafana's InfluxDB data source (InfluxQL mode) stores a raw query as
``{"refId", "datasource", "rawQuery": true, "query", "resultFormat"[, "alias"]}``.
:class:`InfluxQuery` is that target as an SDK ``Dataquery``; :func:`register`
teaches the SDK's decoder to read it back (``Dashboard.from_json``), so a
dashboard round-trips through the SDK's models without loss.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DATASOURCE_TYPE = "influxdb"
#: The uid the provisioned data source has (deploy/grafana/datasources/xanet.yaml).
DATASOURCE_UID = "xanet-influxdb"
DATASOURCE = DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)

ResultFormat = Literal["time_series", "table"]


class InfluxQuery(cogvariants.Dataquery):
    """One raw InfluxQL query of a panel."""

    def __init__(self, query: str = "", ref_id: str = "A",
                 result_format: ResultFormat = "time_series", alias: str | None = None,
                 datasource: DataSourceRef | None = None) -> None:
        self.query = query
        self.ref_id = ref_id
        self.result_format = result_format
        self.alias = alias
        self.datasource = datasource or DATASOURCE

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": self.datasource.to_json(),
            "rawQuery": True,
            "query": self.query,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            out["alias"] = self.alias
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        if data.get("rawQuery") is not True:
            raise ValueError(f"only raw InfluxQL targets are supported: {data!r}")
        return cls(
            query=data["query"],
            ref_id=data.get("refId", "A"),
            result_format=data.get("resultFormat", "time_series"),
            alias=data.get("alias"),
            datasource=DataSourceRef.from_json(data["datasource"])
            if "datasource" in data else None,
        )


class Query(cogbuilder.Builder[InfluxQuery]):
    """Builder for :class:`InfluxQuery`, for ``panel.with_target(...)``."""

    def __init__(self, query: str, ref_id: str = "A") -> None:
        self._internal = InfluxQuery(query=query, ref_id=ref_id)

    def build(self) -> InfluxQuery:
        return self._internal

    def table(self) -> Self:
        self._internal.result_format = "table"
        return self

    def alias(self, alias: str) -> Self:
        self._internal.alias = alias
        return self


def register() -> None:
    """Let the SDK decode ``influxdb`` targets as :class:`InfluxQuery`."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE,
                                   from_json_hook=InfluxQuery.from_json))
