#!/bin/sh
# InfluxDB 2.x first-start hook (the influxdb:2 image runs
# /docker-entrypoint-initdb.d/*.sh once, after `influx setup`, with the
# DOCKER_INFLUXDB_INIT_* variables set and the CLI configured with the admin token).
#
# xanet's dashboards and reports are InfluxQL, and the collector writes with the
# v1 API (/write?db=xanet), so InfluxDB 2.x needs:
#   1. a DBRP mapping: database "xanet", retention policy "autogen" -> the bucket;
#   2. v1 users: "xanet-collector" (write the bucket), "grafana" (read it).
# Passwords come from the environment (see deploy/compose.yaml); never from here.
set -eu

: "${DOCKER_INFLUXDB_INIT_BUCKET_ID:?run by the influxdb:2 image after setup}"
: "${DOCKER_INFLUXDB_INIT_ORG:?}"
: "${XANET_INFLUX_COLLECTOR_PASSWORD:?}"
: "${XANET_INFLUX_GRAFANA_PASSWORD:?}"
DB=${XANET_INFLUX_DATABASE:-xanet}

influx v1 dbrp create \
    --org "$DOCKER_INFLUXDB_INIT_ORG" \
    --db "$DB" --rp autogen --default \
    --bucket-id "$DOCKER_INFLUXDB_INIT_BUCKET_ID"

influx v1 auth create \
    --org "$DOCKER_INFLUXDB_INIT_ORG" \
    --username xanet-collector --password "$XANET_INFLUX_COLLECTOR_PASSWORD" \
    --write-bucket "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
    --description "xanet collector: v1 /write"

influx v1 auth create \
    --org "$DOCKER_INFLUXDB_INIT_ORG" \
    --username grafana --password "$XANET_INFLUX_GRAFANA_PASSWORD" \
    --read-bucket "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
    --description "Grafana: InfluxQL, read only"

echo "xanet: DBRP $DB/autogen -> bucket $DOCKER_INFLUXDB_INIT_BUCKET_ID; v1 users xanet-collector, grafana"
