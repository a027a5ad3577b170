#!/usr/bin/env bash
# Makes clients trust the emulator's self-signed TLS certificate (see emulator/README.md, "TLS").
#
#   trust-cert.sh bundle CERT.pem OUT.pem   # OUT = the system's CA bundle + CERT; no root needed.
#                                           # Start the client process with SSL_CERT_FILE=OUT.pem
#                                           # (.NET/pwsh and rustls-native-certs both read it).
#   trust-cert.sh install CERT.pem          # adds CERT to the system trust store (root; Debian's
#                                           # update-ca-certificates); idempotent
#   trust-cert.sh uninstall CERT.pem        # removes what `install` added for CERT
#   trust-cert.sh uninstall --all           # removes every certificate `install` added
set -euo pipefail

store=/usr/local/share/ca-certificates
prefix=graph-emulator-

die() { echo "trust-cert.sh: $*" >&2; exit 2; }

# The system bundle OpenSSL (and so .NET) reads by default.
system_bundle() {
    for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
        [ -f "$f" ] && { echo "$f"; return; }
    done
}

# The store file name for a certificate: one per certificate, named by its fingerprint.
store_file() {
    local fp
    fp=$(openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
    [ -n "$fp" ] || die "$1 is not a PEM certificate"
    echo "$store/$prefix${fp:0:16}.crt"
}

cmd=${1:-}
case "$cmd" in
bundle)
    [ $# -eq 3 ] || die "usage: trust-cert.sh bundle CERT.pem OUT.pem"
    openssl x509 -in "$2" -noout >/dev/null 2>&1 || die "$2 is not a PEM certificate"
    tmp="$3.tmp.$$"
    { b=$(system_bundle); [ -n "$b" ] && cat "$b"; cat "$2"; } >"$tmp"
    mv "$tmp" "$3"
    ;;
install)
    [ $# -eq 2 ] || die "usage: trust-cert.sh install CERT.pem"
    command -v update-ca-certificates >/dev/null || die "update-ca-certificates not found (Debian/Ubuntu's ca-certificates package)"
    target=$(store_file "$2")
    if [ -f "$target" ] && cmp -s "$2" "$target"; then
        exit 0 # already trusted
    fi
    mkdir -p "$store"
    cp "$2" "$target"
    update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed"
    ;;
uninstall)
    [ $# -eq 2 ] || die "usage: trust-cert.sh uninstall CERT.pem|--all"
    if [ "$2" = --all ]; then
        files=("$store/$prefix"*.crt)
    else
        files=("$(store_file "$2")")
    fi
    removed=0
    for f in "${files[@]}"; do
        [ -f "$f" ] && { rm -f "$f"; removed=1; }
    done
    if [ "$removed" = 1 ]; then
        update-ca-certificates --fresh >/dev/null 2>&1 || die "update-ca-certificates failed"
    fi
    ;;
*)
    die "usage: trust-cert.sh bundle CERT.pem OUT.pem | install CERT.pem | uninstall CERT.pem|--all"
    ;;
esac
