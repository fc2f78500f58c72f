#!/bin/sh
# Installs the Debian packages assay needs to build and test, when run as root; otherwise
# prints the exact command and stops. Called by `make demo` and `make test`.
set -eu
PACKAGES="gcc make pkg-config liblua5.4-dev libuv1-dev libcurl4-openssl-dev libcjson-dev libsqlite3-dev libzip-dev libcmocka-dev python3 valgrind bc clang libclang-rt-dev chromium-headless-shell fonts-dejavu-core"
# `make test` reads the Kubernetes manifests with python3-yaml, and the Slurm test starts a
# one-node cluster from slurm-wlm and munge. Only root can start one, so those two are
# installed for `make test` as root and never demanded otherwise.
if [ "${1:-}" = test ]; then
    PACKAGES="$PACKAGES python3-yaml"
    [ "$(id -u)" -eq 0 ] && PACKAGES="$PACKAGES slurm-wlm munge"
fi

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    echo "assay: installing missing Debian packages:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >&2
else
    echo "assay: missing Debian packages:$missing" >&2
    echo "assay: install them with:" >&2
    echo "    sudo apt-get install -y$missing" >&2
    exit 1
fi
