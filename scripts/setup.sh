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
  tini                      # `--init`: tini-static is bind-mounted as the container's pid 1 (docker's docker-init is tini too)
  nftables                  # networking: NAT, published ports and isolation in Vessel's own nftables table
  iperf3 socat              # network tests and bench/network.sh
  qemu-system-x86 qemu-utils cpio  # virtual machines (TCG/KVM), qemu-img disks, newc initramfs checks
  xorriso                   # cloud-init NoCloud seed images (iso9660, volume label cidata)
  python3-docker docker-compose  # Docker API compatibility tests: docker-py and compose against vesseld
  buildah                   # bench/build.sh peer
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
# The real `docker` client for the Docker API tests, without Debian's dockerd: unpack the client
# binary from the docker.io package into the project's cache instead of installing the daemon.
cache="$(cd "$(dirname "$0")/.." && pwd)/.cache"
if [ ! -x "$cache/docker/docker" ]; then
  mkdir -p "$cache/docker" && tmp=$(mktemp -d); chmod 755 "$tmp"
  (cd "$tmp" && apt-get download -q docker.io >/dev/null 2>&1 || { apt-get update -q >/dev/null; apt-get download -q docker.io >/dev/null; })
  dpkg -x "$tmp"/docker.io_*.deb "$tmp/x" && cp "$tmp/x/usr/bin/docker" "$cache/docker/docker.tmp" && mv "$cache/docker/docker.tmp" "$cache/docker/docker"
  rm -rf "$tmp"
fi
# Debian's kernel for the VM tests: unpacked (dpkg -x), never installed as the host kernel.
if [ ! -d "$cache/kernel/boot" ]; then
  mkdir -p "$cache/kernel" && tmp=$(mktemp -d); chmod 755 "$tmp"
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  (cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1)   # apt warns that it downloads unsandboxed as root
  dpkg -x "$tmp"/linux-image-*.deb "$cache/kernel.tmp" && rm -rf "$cache/kernel" && mv "$cache/kernel.tmp" "$cache/kernel"
  rm -rf "$tmp"
fi
command -v dotnet >/dev/null || { echo "setup: the .NET 10 SDK (dotnet) is required and not on PATH" >&2; exit 1; }
