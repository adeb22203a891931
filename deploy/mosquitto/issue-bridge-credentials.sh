#!/usr/bin/env bash
# Issue one region's bridge credentials on the CORE broker host.
#
#   issue-bridge-credentials.sh [options] REGION PROVINCE [PROVINCE...]
#
# - generates a random password and adds the user xanet-bridge-REGION to the core's
#   Mosquitto password file (mosquitto_passwd, the password through stdin, never argv);
# - appends its ACL block to the core's ACL: publish only the region's provinces' site
#   topics xanet/v1/PROVINCE/+/+/{telemetry,status,test,batch} and its own state
#   xanet/v1/bridge/REGION/state; read only the agents' signed configs
#   xanet/v1/config/# and the core's capability message xanet/v1/core/capabilities;
# - writes what the regional broker needs into the output directory (mode 700):
#   20-xanet-bridge.conf (600: bridge.conf filled in, with the password) and ca.crt.
#
# Then reload the core broker: kill -HUP $(pidof mosquitto)
# and copy the output directory to the regional host over a secure channel:
#   20-xanet-bridge.conf -> /etc/mosquitto/conf.d/ (owner mosquitto, 600)
#   ca.crt               -> /etc/mosquitto/xanet/tls/ca.crt (if that host has another CA)
#
# Options:
#   --dir DIR        core broker files: DIR/passwd, DIR/acl, DIR/tls/ca.crt
#                    (default /etc/mosquitto/xanet)
#   --out DIR        where the regional broker's files go (default ./xanet-bridge-REGION);
#                    must not exist
#   --host NAME      the core broker's host name as the regional broker reaches it
#                    (default: this host's FQDN); it must be in the core's certificate
#   --port N         the core broker's TLS port (default 8883)
#   --ca-cert FILE   CA certificate (default DIR/tls/ca.crt)
#   --template FILE  the bridge template (default bridge.conf next to this script)
#
# See README.md in this directory ("Regional brokers") and docs/deploy-core.md.

set -euo pipefail
umask 077

die() { echo "issue-bridge-credentials: $*" >&2; exit 2; }

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }

# shellcheck source=issue-lib.sh
. "$(dirname "$0")/issue-lib.sh"

DIR=/etc/mosquitto/xanet
OUT=
HOST=
PORT=8883
CA_CERT=
TEMPLATE=$(dirname "$0")/bridge.conf

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir) DIR=${2:?}; shift 2 ;;
        --out) OUT=${2:?}; shift 2 ;;
        --host) HOST=${2:?}; shift 2 ;;
        --port) PORT=${2:?}; shift 2 ;;
        --ca-cert) CA_CERT=${2:?}; shift 2 ;;
        --template) TEMPLATE=${2:?}; shift 2 ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) die "unknown option $1 (try --help)" ;;
        *) break ;;
    esac
done
[[ $# -ge 2 ]] || usage
REGION=$1
shift
PROVINCES=("$@")
USER_NAME=xanet-bridge-$REGION

# The id grammar of issue-agent-credentials.sh (xanet.ids.IDENT_PATTERN); the region
# is part of a user name, so no ':' there (the password file's separator).
IDENT='^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'
[[ $REGION =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,50}$ ]] \
    || die "region '$REGION': use letters, digits, '_', '.', '-' (at most 51, no ':')"
for p in "${PROVINCES[@]}"; do
    [[ $p =~ $IDENT ]] \
        || die "province '$p': use letters, digits, '_', '.', ':', '-' (at most 64; no '/', '+', '#')"
done
[[ $PORT =~ ^[0-9]+$ ]] || die "--port '$PORT' is not a number"

PASSWD=$DIR/passwd
ACL=$DIR/acl
CA_CERT=${CA_CERT:-$DIR/tls/ca.crt}
OUT=${OUT:-./$USER_NAME}
HOST=${HOST:-$(hostname -f 2>/dev/null || hostname)}

issue_preflight
[[ -f $TEMPLATE ]] || die "bridge template $TEMPLATE not found"
[[ ! -e $OUT ]] || die "$OUT already exists: refusing to overwrite another bridge's files"

# One issuer at a time (the password file and the ACL are edited in place; the agents'
# script takes the same lock).
issue_lock "'$USER_NAME'" "$USER_NAME"

mkdir -p -m 700 "$OUT"
PASSWORD=$(openssl rand -hex 24)
cp "$CA_CERT" "$OUT/ca.crt"

issue_password "$USER_NAME" "$PASSWORD"

{
    printf '\n# bridge of region %s (%s), issued %s\n' "$REGION" "${PROVINCES[*]}" \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'user %s\n' "$USER_NAME"
    for p in "${PROVINCES[@]}"; do
        for kind in telemetry status test batch; do
            printf 'topic write xanet/v1/%s/+/+/%s\n' "$p" "$kind"
        done
    done
    printf 'topic write xanet/v1/bridge/%s/state\n' "$REGION"
    printf 'topic read xanet/v1/config/#\n'
    printf 'topic read xanet/v1/core/capabilities\n'
} >> "$ACL"

issue_owner

TOPICS=$(mktemp)
trap 'rm -f "$TOPICS"' EXIT
for p in "${PROVINCES[@]}"; do
    for kind in telemetry status test batch; do
        printf 'topic xanet/v1/%s/+/+/%s out 1\n' "$p" "$kind"
    done
done > "$TOPICS"
# The password is hex and the names are checked above: no sed metacharacters in them.
sed -e "s/@REGION@/$REGION/g" -e "s/@CORE_HOST@/$HOST/g" -e "s/@CORE_PORT@/$PORT/g" \
    -e "s/@PASSWORD@/$PASSWORD/g" \
    -e "/^@TOPICS@\$/{r $TOPICS" -e 'd}' "$TEMPLATE" > "$OUT/20-xanet-bridge.conf"
chmod 600 "$OUT/20-xanet-bridge.conf"
if grep -q '@[A-Z_]*@' "$OUT/20-xanet-bridge.conf"; then
    die "the template has fields this script does not fill: $(grep -o '@[A-Z_]*@' "$OUT/20-xanet-bridge.conf" | sort -u | tr '\n' ' ')"
fi

echo "issued $USER_NAME for ${PROVINCES[*]}: files in $OUT"
echo "reload the core broker now: kill -HUP \$(pidof mosquitto)"
