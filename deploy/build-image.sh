#!/usr/bin/env bash
# Build the services' image with podman from a Debian bookworm base made here with mmdebstrap
# (no image registry needed), then smoke-test it: migrate spa on SQLite, serve, probe.
#
#   deploy/build-image.sh [TAG]          default TAG: the version in pyproject.toml
#
# Needs root or user namespaces, and: apt-get install podman buildah mmdebstrap uidmap
# Environment:
#   MIRROR=http://deb.debian.org/debian  the Debian archive the base is made from
#   ISOLATION=chroot                     build and smoke-test without an OCI runtime, where
#                                        the runtime cannot start containers (no cgroup
#                                        controllers, rlimits that may not be set)
#   PIP_CERT=/path/ca-bundle.crt         a CA bundle for a network that intercepts TLS
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml")
TAG=${1:-$VERSION}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
BASE=localhost/spa-platform-base:bookworm
IMAGE=localhost/spa-platform:$TAG
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if ! podman image exists "$BASE"; then
    mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$WORK/base.tar" "$MIRROR"
    podman import --change 'CMD ["/bin/bash"]' "$WORK/base.tar" "$BASE"
fi

build_args=(--network=host --build-arg "BASE=$BASE" -t "$IMAGE" -f "$ROOT/Dockerfile")
if [[ -n "${ISOLATION:-}" ]]; then
    build_args+=(--isolation "$ISOLATION")
fi
if [[ -n "${PIP_CERT:-}" ]]; then
    build_args+=(-v "$PIP_CERT:/run/build-ca.crt:ro" --build-arg PIP_CERT=/run/build-ca.crt)
fi
# The console's front-end files (from npm, by package-lock.json) go into the package first.
bash "$ROOT/deploy/console_assets.sh"
podman build "${build_args[@]}" "$ROOT"

# The smoke test runs as the image's own user, with only /tmp writable.
SMOKE=$(cat <<'PY'
import json, subprocess, sys, time, urllib.request
env = {"SPA_DATABASE_URL": "sqlite+aiosqlite:////tmp/spa.db",
       "SPA_ISSUER_KEY_FILES": '["/tmp/issuer-key.pem"]', "PATH": "/opt/spa-platform/bin:/usr/bin"}
run = lambda *a: subprocess.run([sys.executable, "-m", "services.spa", *a], env=env, check=True)
run("migrate")
run("issuer-key", "/tmp/issuer-key.pem")
run("wait-for-schema", "--timeout", "0")
server = subprocess.Popen([sys.executable, "-m", "services.spa", "serve", "--port", "18000"], env=env)
try:
    for _ in range(120):
        try:
            with urllib.request.urlopen("http://127.0.0.1:18000/readyz", timeout=2) as answer:
                print(json.dumps({"readyz": answer.status, "body": json.load(answer)}))
                break
        except OSError:
            time.sleep(0.5)
    else:
        sys.exit("spa did not become ready")
    with urllib.request.urlopen("http://127.0.0.1:18000/.well-known/jwks.json") as answer:
        assert json.load(answer)["keys"], "no signing key published"
finally:
    server.terminate()
    server.wait(10)
print("smoke test passed")
PY
)
if [[ "${ISOLATION:-}" == chroot ]]; then
    container=$(buildah from "$IMAGE")
    trap 'buildah rm "$container" >/dev/null; rm -rf "$WORK"' EXIT
    buildah run --isolation=chroot "$container" -- python -c "$SMOKE"
else
    podman run --rm --read-only --tmpfs /tmp --entrypoint python "$IMAGE" -c "$SMOKE"
fi
echo "built $IMAGE"
