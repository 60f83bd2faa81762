#!/usr/bin/env bash
# Builds the Debian bookworm base image (sandboxed/base:bookworm) every other image starts from.
# Uses a local or pullable debian:bookworm-slim when there is one; otherwise bootstraps Debian with
# debootstrap from the mirror this host's apt already uses. Cached: an existing image is kept.
# Usage: images/base/build.sh [--force]
set -euo pipefail
image=${SANDBOXED_BASE_IMAGE:-sandboxed/base:bookworm}

if [ "${1:-}" != "--force" ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image: present"
  exit 0
fi

if docker image inspect debian:bookworm-slim >/dev/null 2>&1 || timeout 20 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
  docker tag debian:bookworm-slim "$image"
  echo "base image $image: from debian:bookworm-slim"
  exit 0
fi

# The first deb URI of the host's apt sources: deb822 (.sources) or one-line (sources.list) format.
mirror=$(
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true;
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; break}}' || true; } |
  grep -v -- '-security' | head -n 1 || true
)
if [ -z "$mirror" ]; then
  echo "error: no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d; set one up, or load a debian:bookworm-slim image" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "installing debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "bootstrapping Debian bookworm from $mirror (about a minute)"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 20 "$root.log" >&2; echo "error: debootstrap failed (log above)" >&2; exit 1; }
rm -f "$root.log"
# Keep the mirror the host uses, so apt-get inside images works the same way.
echo "deb $mirror bookworm main" > "$root/etc/apt/sources.list"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import - "$image" >/dev/null
echo "base image $image: built"
