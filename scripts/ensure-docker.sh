#!/usr/bin/env bash
# Makes sure a Docker engine answers on /var/run/docker.sock: installs Debian's docker.io when there is no
# engine (as root, on Debian/Ubuntu), and starts dockerd in the background where no service manager runs it.
# Idempotent: does nothing when the engine already answers.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  echo "docker engine: running ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: the Docker engine is not running and only root can install or start it; start Docker, or run this as root" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no Docker engine and no apt-get to install one; install Docker Engine for this OS, then retry" >&2
    exit 1
  fi
  echo "docker engine: installing Debian's docker.io"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
  systemctl start docker
else
  echo "docker engine: starting dockerd in the background (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
fi
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then
    echo "docker engine: running ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
    exit 0
  fi
  sleep 0.5
done
echo "error: dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
exit 1
