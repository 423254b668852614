#!/usr/bin/env bash
# Debian packages the tests use beyond Python: HAProxy, the load balancer in front of the replicas
# in tests/e2e/test_replicas.py, and Chromium, the browser the console's tests drive through
# Playwright (tests/console; Playwright's own browser download is never used). Installed with
# apt-get where they are missing and this runs as root; otherwise the tests that need them name
# what is missing (and fail under CI=true rather than skipping).
set -euo pipefail

needed=()
command -v haproxy >/dev/null 2>&1 || needed+=(haproxy)
command -v chromium >/dev/null 2>&1 || needed+=(chromium)
[ ${#needed[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "not installed: ${needed[*]} (apt-get install ${needed[*]}); the replica and console tests need them" >&2
    exit 0
fi
echo "installing ${needed[*]} from Debian's packages"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
