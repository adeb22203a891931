#!/usr/bin/env bash
# Issue one xanet agent's MQTT credentials on the broker host.
#
#   issue-agent-credentials.sh [options] AGENT_ID PROVINCE COMMUNE SITE
#
# - generates a random password, adds AGENT_ID to the Mosquitto password file
#   (mosquitto_passwd, the password goes through stdin, never argv);
# - appends AGENT_ID's ACL block: publish only to
#   xanet/v1/PROVINCE/COMMUNE/SITE/{telemetry,status,test,batch} (test: the
#   technician's test message, xanet agent test; batch: compact backlog batches),
#   read only its own pushed config xanet/v1/config/AGENT_ID (docs/remote-config.md)
#   and the core's capability message xanet/v1/core/capabilities;
# - with --cert: also a client key and certificate (CN = AGENT_ID) signed by
#   the xanet CA, for brokers with require_certificate / use_identity_as_username;
# - writes what the site box needs into the output directory (mode 700):
#   mqtt.password (600), ca.crt, client.crt + client.key (600) with --cert,
#   and mqtt.toml, the agent's [mqtt] section.
#
# Then reload the broker: kill -HUP $(pidof mosquitto)
# and copy the output directory to the site box over a secure channel.
#
# Options:
#   --dir DIR        broker files: DIR/passwd, DIR/acl, DIR/tls/ca.crt
#                    (default /etc/mosquitto/xanet)
#   --out DIR        where the agent's files go (default ./AGENT_ID); must not exist
#   --host NAME      broker host name the agents connect to, for mqtt.toml
#                    (default: this host's FQDN); it must be in the server certificate
#   --port N         broker TLS port, for mqtt.toml (default 8883)
#   --cert           also issue a client certificate
#   --ca-cert FILE   CA certificate (default DIR/tls/ca.crt)
#   --ca-key FILE    CA private key (required with --cert; keep it off the broker)
#   --days N         client certificate validity (default 825)
#
# See README.md in this directory and docs/security.md.

set -euo pipefail
umask 077

die() { echo "issue-agent-credentials: $*" >&2; exit 2; }

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }

# shellcheck source=issue-lib.sh
. "$(dirname "$0")/issue-lib.sh"

DIR=/etc/mosquitto/xanet
OUT=
HOST=
PORT=8883
CERT=0
CA_CERT=
CA_KEY=
DAYS=825

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir) DIR=${2:?}; shift 2 ;;
        --out) OUT=${2:?}; shift 2 ;;
        --host) HOST=${2:?}; shift 2 ;;
        --port) PORT=${2:?}; shift 2 ;;
        --cert) CERT=1; shift ;;
        --ca-cert) CA_CERT=${2:?}; shift 2 ;;
        --ca-key) CA_KEY=${2:?}; shift 2 ;;
        --days) DAYS=${2:?}; shift 2 ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) die "unknown option $1 (try --help)" ;;
        *) break ;;
    esac
done
[[ $# -eq 4 ]] || usage
AGENT=$1 PROVINCE=$2 COMMUNE=$3 SITE=$4

# The one id grammar (xanet.ids.IDENT_PATTERN; tests/test_topics.py keeps these two
# lines equal to it): usable as a topic
# level and an InfluxDB tag. The agent id is also a Mosquitto user name, where
# ':' separates user and hash in the password file, so ':' is refused there.
IDENT='^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'
[[ $AGENT =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] \
    || die "agent id '$AGENT': use letters, digits, '_', '.', '-' (at most 64, no ':')"
[[ $AGENT != xanet-collector ]] || die "agent id '$AGENT' is the collector's user name"
for pair in "province:$PROVINCE" "commune:$COMMUNE" "site:$SITE"; do
    name=${pair%%:*} value=${pair#*:}
    [[ $value =~ $IDENT ]] \
        || die "$name '$value': use letters, digits, '_', '.', ':', '-' (at most 64; no '/', '+', '#')"
done
[[ $PORT =~ ^[0-9]+$ ]] || die "--port '$PORT' is not a number"
[[ $DAYS =~ ^[0-9]+$ ]] || die "--days '$DAYS' is not a number"

PASSWD=$DIR/passwd
ACL=$DIR/acl
CA_CERT=${CA_CERT:-$DIR/tls/ca.crt}
OUT=${OUT:-./$AGENT}
HOST=${HOST:-$(hostname -f 2>/dev/null || hostname)}

issue_preflight
if [[ $CERT -eq 1 ]]; then
    [[ -n $CA_KEY ]] || die "--cert needs --ca-key FILE (the CA's private key)"
    [[ -f $CA_KEY ]] || die "CA key $CA_KEY not found"
fi
[[ ! -e $OUT ]] || die "$OUT already exists: refusing to overwrite another agent's files"

# One issuer at a time (the password file and the ACL are edited in place).
issue_lock "agent '$AGENT'" "$AGENT"

mkdir -p -m 700 "$OUT"
PASSWORD=$(openssl rand -hex 24)
printf '%s\n' "$PASSWORD" > "$OUT/mqtt.password"
chmod 600 "$OUT/mqtt.password"
cp "$CA_CERT" "$OUT/ca.crt"

issue_password "$AGENT" "$PASSWORD"

{
    printf '\n# agent %s, issued %s\n' "$AGENT" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'user %s\n' "$AGENT"
    printf 'topic write xanet/v1/%s/%s/%s/telemetry\n' "$PROVINCE" "$COMMUNE" "$SITE"
    printf 'topic write xanet/v1/%s/%s/%s/status\n' "$PROVINCE" "$COMMUNE" "$SITE"
    printf 'topic write xanet/v1/%s/%s/%s/test\n' "$PROVINCE" "$COMMUNE" "$SITE"
    printf 'topic write xanet/v1/%s/%s/%s/batch\n' "$PROVINCE" "$COMMUNE" "$SITE"
    printf 'topic read xanet/v1/config/%s\n' "$AGENT"
    printf 'topic read xanet/v1/core/capabilities\n'
} >> "$ACL"

issue_owner

CERT_LINES=
if [[ $CERT -eq 1 ]]; then
    EXT=$(mktemp)
    trap 'rm -f "$EXT" "$OUT/client.csr"' EXIT
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n' > "$EXT"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$OUT/client.key" -out "$OUT/client.csr" -subj "/CN=$AGENT" 2>/dev/null \
        || die "openssl req failed"
    openssl x509 -req -in "$OUT/client.csr" -CA "$CA_CERT" -CAkey "$CA_KEY" \
        -set_serial "0x$(openssl rand -hex 16)" -days "$DAYS" -extfile "$EXT" \
        -out "$OUT/client.crt" 2>/dev/null || die "openssl x509 (signing) failed"
    chmod 600 "$OUT/client.key"
    CERT_LINES="cert_file = \"/etc/xanet/client.crt\"
key_file = \"/etc/xanet/client.key\""
fi

cat > "$OUT/mqtt.toml" <<EOF
# [mqtt] section for agent $AGENT (site $PROVINCE/$COMMUNE/$SITE).
# Copy ca.crt, mqtt.password${CERT_LINES:+, client.crt, client.key} to /etc/xanet/ on the site box,
# owned by the agent's user, mode 600 (a group- or world-readable secret file is refused).
[mqtt]
host = "$HOST"
port = $PORT
tls = true
ca_file = "/etc/xanet/ca.crt"
${CERT_LINES:+$CERT_LINES
}username = "$AGENT"              # also the client id (use_username_as_clientid): one box per agent
password = { file = "/etc/xanet/mqtt.password" }
EOF

echo "issued $AGENT for xanet/v1/$PROVINCE/$COMMUNE/$SITE: files in $OUT"
echo "reload the broker now: kill -HUP \$(pidof mosquitto)"
