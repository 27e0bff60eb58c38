#!/usr/bin/env bash
# Installs everything Vessel needs on a fresh Debian 12 machine. Idempotent: installs only what is missing.
set -euo pipefail
packages=(
  gcc libc6-dev make        # the executor (static glibc)
  libsqlite3-dev            # vesseld links SQLite statically (libsqlite3.a)
  busybox-static            # test and demo root filesystems
  jq iproute2 procps psmisc util-linux
  zstd gzip tar libcap2-bin # layer formats and file capabilities, checked against the real tools in tests
  docker-registry           # registry client integration tests (a real OCI distribution registry)
  skopeo                    # interop tests: registries, docker-archive and oci-archive written by a second client
  apache2-utils             # htpasswd -B for the registry basic-auth test
  runc crun                 # peers: conformance comparisons and bench/
  containerd podman         # engine integration tests (tests/Vessel.Integration.Tests) and bench/integrations.sh: vessel-runc under the real callers
  hyperfine                 # bench/
  debootstrap umoci         # bench/images.sh: the Debian minbase fixture (tests/fixtures/debian-minbase.sh) and the umoci peer
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v dotnet >/dev/null || { echo "setup: the .NET 10 SDK (dotnet) is required and not on PATH" >&2; exit 1; }
