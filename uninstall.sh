#!/usr/bin/env bash
# Removes what sandboxed created, and only that: the compose stack, and every container, network and
# volume labelled sandboxed.managed=true. Workspaces and state are kept unless --data or --all.
#
#   ./uninstall.sh            stop the stack, remove all sandboxes and the network (keeps your data)
#   ./uninstall.sh --images   also remove the built images (sandboxed/*)
#   ./uninstall.sh --data     also DELETE all workspaces and state (asks to confirm; --yes skips that)
#   ./uninstall.sh --all      images + data
#   --dry-run                 print what would be removed, remove nothing
set -euo pipefail
cd "$(dirname "$0")"

images=false data=false yes=false dry=false
for arg in "$@"; do
  case $arg in
    --images) images=true ;;
    --data) data=true ;;
    --all) images=true; data=true ;;
    --yes|-y) yes=true ;;
    --dry-run) dry=true ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "error: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

# shellcheck source=scripts/load-env.sh
. scripts/load-env.sh
datadir=${SANDBOXED_DATA_DIR:-/var/lib/sandboxed}
run() { if $dry; then echo "    would run: $*"; else "$@"; fi; }
# remove KIND ID COMMAND...: runs the command and says what went (or, with --dry-run, what would).
remove() { local what="$1 $2"; shift 2; if $dry; then echo "    would remove $what"; else "$@" >/dev/null && echo "    removed $what"; fi; }
compose() { if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi; }

if $data && ! $yes && ! $dry; then
  if [ ! -t 0 ] || [ "${CI:-}" = true ]; then
    echo "error: --data deletes every workspace in $datadir; add --yes to confirm when not running interactively" >&2
    exit 1
  fi
  read -r -p "Delete ALL workspaces and state in $datadir? Type 'delete' to confirm: " answer
  [ "$answer" = delete ] || { echo "nothing deleted"; exit 1; }
fi

echo "==> the compose stack"
if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; then
  run compose --profile tls down --remove-orphans $($data && echo --volumes) || true
fi

echo "==> containers labelled sandboxed.managed=true"
for c in $(docker ps -aq --filter label=sandboxed.managed=true); do remove container "$c" docker rm -f "$c"; done

echo "==> networks and volumes labelled sandboxed.managed=true"
for n in $(docker network ls -q --filter label=sandboxed.managed=true); do remove network "$n" docker network rm "$n"; done
if $data; then
  for v in $(docker volume ls -q --filter label=sandboxed.managed=true); do remove volume "$v" docker volume rm "$v"; done
fi

echo "==> the host rule that shields this host from sandbox bridges"
while iptables -C INPUT -i sbx+ -m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP 2>/dev/null; do
  remove rule "INPUT -i sbx+" iptables -D INPUT -i sbx+ -m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP
  $dry && break
done

if $images; then
  echo "==> images sandboxed/*"
  for i in $(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^sandboxed/' || true); do remove image "$i" docker rmi "$i"; done
fi

if $data; then
  echo "==> data: $datadir"
  case $datadir in
    ""|/|/home|/root|/var|/var/lib|/usr|/etc) echo "error: refusing to delete $datadir" >&2; exit 1 ;;
  esac
  remove directory "$datadir" rm -rf -- "$datadir"
else
  echo "==> kept your workspaces and state in $datadir"
fi
