# Sourced by issue-agent-credentials.sh and issue-bridge-credentials.sh: one MQTT user's
# password and ACL block added to the broker's files, one issuer at a time. The caller
# defines die() and sets PASSWD, ACL and CA_CERT first.

# issue_preflight OUT: the tools and the broker's files are there, OUT is not.
issue_preflight() {
    command -v mosquitto_passwd >/dev/null || die "mosquitto_passwd not found (apt-get install mosquitto)"
    command -v openssl >/dev/null || die "openssl not found"
    [[ -f $ACL ]] || die "$ACL not found (start from deploy/mosquitto/acl)"
    [[ -f $CA_CERT ]] || die "CA certificate $CA_CERT not found (see README.md, 'CA and server certificate')"
}

# issue_lock WHO USER: take the issuers' lock (fd 9, held until exit); WHO ("agent 'x'")
# must not have a password or an ACL block yet.
issue_lock() {
    local who=$1 user=$2
    exec 9>>"$ACL"
    flock -w 30 9 || die "$ACL is locked by another issuer"
    if [[ -f $PASSWD ]] && grep -q "^${user//./\\.}:" "$PASSWD"; then
        die "$who already has a password in $PASSWD (rotate it with: mosquitto_passwd $PASSWD $user)"
    fi
    if grep -qx "user $user" "$ACL"; then
        die "$who already has an ACL block in $ACL"
    fi
}

# issue_password USER PASSWORD: USER's password in the broker's password file (mode 600).
issue_password() {
    local user=$1 password=$2
    if [[ ! -f $PASSWD ]]; then
        install -m 600 /dev/null "$PASSWD"
    fi
    printf '%s\n%s\n' "$password" "$password" | mosquitto_passwd "$PASSWD" "$user" >/dev/null \
        || die "mosquitto_passwd failed for $user"
    chmod 600 "$PASSWD"
}

# issue_owner: the broker's files belong to the broker's user (when run as root).
issue_owner() {
    if id mosquitto >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
        chown mosquitto: "$PASSWD" "$ACL"
    fi
}
