#!/usr/bin/env bash
# Removes what this sandboxed instance created, and only that: the compose stack, the containers, networks
# and volumes labelled sandboxed.instance=$SANDBOXD_INSTANCE. Workspaces and state are kept unless --data.
#
#   ./uninstall.sh            stop the stack, remove all sandboxes and the network (keeps your data)
#   ./uninstall.sh --images   also remove the built images (sandboxed/*, and older untagged builds of them)
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
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "error: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

# shellcheck source=scripts/load-env.sh
. scripts/load-env.sh
datadir=${SANDBOXED_DATA_DIR:-/var/lib/sandboxed}
instance=${SANDBOXD_INSTANCE:-default}
project=${COMPOSE_PROJECT_NAME:-sandboxed}
# The namespace of our images: their repository prefix (<ns>/*) and label keys (<ns>.inputs, <ns>.managed).
# Only the tests change it, to aim --images at throwaway images instead of the ones in use.
ns=${SANDBOXED_IMAGE_NAMESPACE:-sandboxed}
marker=.sandboxed-data
# Everything the daemon and install.sh create in the data dir (src/store, src/gateway/preview-tokens.ts,
# src/workspaces); anything else there is someone else's and stays. The marker goes last.
entries=(workspaces spool sandboxed.db sandboxed.db-wal sandboxed.db-shm sandboxed.db-journal preview-token.key secrets.key .sandboxd-reserve .sandboxd-reserve.tmp .sandboxed-self-bind)
[[ $instance =~ ^[a-z0-9][a-z0-9_.-]{0,62}$ ]] || { echo "error: SANDBOXD_INSTANCE='$instance' is not an instance name (lowercase letters, digits, . _ -)" >&2; exit 2; }
[[ $ns =~ ^[a-z0-9][a-z0-9_.-]{0,62}$ ]] || { echo "error: SANDBOXED_IMAGE_NAMESPACE='$ns' is not a namespace (lowercase letters, digits, . _ -)" >&2; exit 2; }

run() { if $dry; then echo "    would run: $*"; else "$@"; fi; }
# remove KIND ID COMMAND...: runs the command and says what went (or, with --dry-run, what would).
remove() { local what="$1 $2"; shift 2; if $dry; then echo "    would remove $what"; else "$@" >/dev/null && echo "    removed $what"; fi; }
compose() { if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi; }
refuse() { echo "error: refusing to delete the data directory $1: $2" >&2; exit 1; }
# none LIST: says so when a step found nothing to remove (a second run reports an empty host).
none() { [ -n "$1" ] || echo "    nothing left"; }

# data_target: sets $real to the resolved data dir, or to "" when there is nothing of ours to delete;
# refuses (exit 1) any path that is, or resolves to, a system or home directory, or is not ours.
data_target() {
  local d=$datadir p
  real=""
  [ -n "$d" ] || refuse "''" "SANDBOXED_DATA_DIR is empty"
  [ "${d#/}" != "$d" ] || refuse "$d" "it is not an absolute path"
  case "/$d/" in */../*|*/./*) refuse "$d" "it contains '.' or '..' components; give the plain path" ;; esac
  if [ -e "$d" ] || [ -L "$d" ]; then p=$(readlink -f -- "$d") || refuse "$d" "it cannot be resolved"; else p=$d; fi
  for candidate in "$d" "$p"; do
    local n
    n=$(printf '%s' "$candidate" | tr -s /)
    [ "$n" = / ] || n=${n%/}
    case $n in
      /|/bin|/boot|/dev|/etc|/home|/lib|/lib32|/lib64|/libx32|/media|/mnt|/opt|/proc|/root|/run|/sbin|/srv|/sys|/tmp|/usr|/usr/*|/var|/var/lib|/var/log|/var/tmp|/var/cache|/var/run|/var/lib/docker|/var/lib/docker/*)
        refuse "$d" "$([ "$candidate" = "$d" ] && echo "it is a system directory" || echo "it resolves to the system directory $n")" ;;
    esac
    if [ -n "${HOME:-}" ] && [ "$n" = "$(readlink -f -- "$HOME" 2>/dev/null || echo "$HOME")" ]; then refuse "$d" "it is your home directory"; fi
    local parts=${n//[^\/]/}
    [ ${#parts} -ge 2 ] || refuse "$d" "it has fewer than 2 path components ($n); sandboxed never puts its data directly under /"
  done
  if [ ! -e "$p" ]; then echo "    $d does not exist: nothing to delete"; return 0; fi
  [ -d "$p" ] || refuse "$d" "it is not a directory"
  local found=false e
  for e in "${entries[@]}" "$marker"; do if [ -e "$p/$e" ] || [ -L "$p/$e" ]; then found=true; fi; done
  if ! $found; then echo "    nothing of sandboxed's left in $d"; return 0; fi
  [ -f "$p/$marker" ] && [ ! -L "$p/$marker" ] || refuse "$d" "it has no $marker marker, so it is not known to be sandboxed's (a data dir from before markers gets one when the daemon next starts)"
  local owner
  owner=$(sed -n 's/^instance=//p' "$p/$marker" | head -n 1)
  [ "$owner" = "$instance" ] || refuse "$d" "its $marker belongs to instance '${owner:-?}', not to SANDBOXD_INSTANCE '$instance'"
  real=$p
}

# unmount_workspaces DIR: unmounts what is mounted at or below DIR/workspaces (the per-workspace disk
# images), deepest first, and detaches loop devices still backing its images, so nothing is deleted
# through a mount and no loop device is left pointing at a deleted file.
unmount_workspaces() {
  local ws=$1/workspaces mp img dev
  # mountinfo field 5 is the mount point, with spaces and the like escaped as \ooo.
  while IFS= read -r mp; do
    [ -n "$mp" ] || continue
    # Propagated copies list one mount point more than once: the first umount takes them all.
    $dry || mountpoint -q -- "$mp" || continue
    remove mount "$mp" umount -- "$mp" || remove mount "$mp (lazily)" umount -l -- "$mp"
  done < <(awk '{print $5}' /proc/self/mountinfo | while IFS= read -r m; do printf '%b\n' "$m"; done |
           awk -v ws="$ws" 'index($0, ws "/") == 1 || $0 == ws {print length($0) " " $0}' | sort -rn | cut -d' ' -f2-)
  [ -d "$ws" ] && command -v losetup >/dev/null 2>&1 || return 0
  for img in "$ws"/*.img; do
    [ -f "$img" ] || continue
    for dev in $(losetup -n -O NAME -j "$img" 2>/dev/null || true); do remove "loop device" "$dev" losetup -d "$dev"; done
  done
}

if $data; then
  echo "==> checking the data directory $datadir"
  data_target
fi

if $data && [ -n "$real" ] && ! $yes && ! $dry; then
  if [ ! -t 0 ] || [ "${CI:-}" = true ]; then
    echo "error: --data deletes every workspace in $datadir; add --yes to confirm when not running interactively" >&2
    exit 1
  fi
  read -r -p "Delete ALL workspaces and state in $datadir? Type 'delete' to confirm: " answer
  [ "$answer" = delete ] || { echo "nothing deleted"; exit 1; }
fi

echo "==> the compose stack (project $project)"
stack=$(docker ps -aq --filter "label=com.docker.compose.project=$project"
        $data && docker volume ls -q --filter "label=com.docker.compose.project=$project" || true)
if [ -n "$stack" ] && { docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; }; then
  run compose --profile tls down --remove-orphans $($data && echo --volumes) || true
fi
# Whatever compose could not take down (a changed or missing compose file or .env): the project's own.
leftover=$(docker ps -aq --filter label=sandboxed.managed=true --filter "label=com.docker.compose.project=$project")
for c in $leftover; do remove container "$c" docker rm -f "$c"; done
none "$stack"

echo "==> containers of instance $instance (label sandboxed.instance=$instance)"
ours=$(docker ps -aq --filter label=sandboxed.managed=true --filter "label=sandboxed.instance=$instance")
for c in $ours; do remove container "$c" docker rm -f "$c"; done
none "$ours"

echo "==> networks and volumes of instance $instance"
nets=$(docker network ls -q --filter label=sandboxed.managed=true --filter "label=sandboxed.instance=$instance")
netnames=$(docker network ls --filter label=sandboxed.managed=true --filter "label=sandboxed.instance=$instance" --format '{{.Name}}')
for n in $nets; do remove network "$n" docker network rm "$n"; done
vols=""
if $data; then
  vols=$(docker volume ls -q --filter label=sandboxed.managed=true --filter "label=sandboxed.instance=$instance"
         docker volume ls -q --filter label=sandboxed.managed=true --filter "label=com.docker.compose.project=$project")
  for v in $(printf '%s\n' $vols | sort -u); do remove volume "$v" docker volume rm "$v"; done
fi
none "$nets$vols"

echo "==> the egress firewall chains of instance $instance's networks"
# One chain per sandbox network, SANDBOXD-<sha256(network name) first 10 hex> (src/runtime/egress.ts), in
# iptables and ip6tables, with jumps into it from FORWARD and INPUT: this instance's alone.
chains=""
for name in ${SANDBOXD_NETWORK:-sandboxed} $netnames; do
  chains="$chains SANDBOXD-$(printf '%s' "${name%-none}" | sha256sum | cut -c1-10)"
done
found=""
for tool in iptables ip6tables; do
  command -v $tool >/dev/null 2>&1 || continue
  for chain in $(printf '%s\n' $chains | sort -u); do
    $tool -S "$chain" >/dev/null 2>&1 || continue
    found=yes
    $tool -S | grep -e "^-A .* -j $chain\$" | while read -r rule; do
      # shellcheck disable=SC2086 # a rule as iptables -S prints it: unquoted words
      remove "$tool rule" "${rule#-A }" $tool -D ${rule#-A }
    done
    remove "$tool chain" "$chain" sh -c "$tool -F $chain && $tool -X $chain"
  done
done
none "$found"

echo "==> the host rule that shields this host from sandbox bridges"
# The rule is shared by every instance on this host: it stays while another instance has sandboxes here.
others=$( { docker network ls --filter label=sandboxed.managed=true --format '{{.Label "sandboxed.instance"}}'
            docker ps -a --filter label=sandboxed.managed=true --format '{{.Label "sandboxed.instance"}}'; } | grep -vx -e "$instance" -e '' | head -n 1 || true)
if [ "${SANDBOXD_HOST_FIREWALL:-true}" = false ]; then
  echo "    kept: this instance runs with SANDBOXD_HOST_FIREWALL=false, so it added none"
elif [ -n "$others" ]; then
  echo "    kept: instance $others still has sandboxes here and relies on it"
else
  while iptables -C INPUT -i sbx+ -m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP 2>/dev/null; do
    remove rule "INPUT -i sbx+" iptables -D INPUT -i sbx+ -m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP
    $dry && break
  done
fi

if $images; then
  echo "==> images $ns/*, and every image labelled $ns.inputs or $ns.managed=true (older builds)"
  tagged=$(docker images --format '{{.Repository}}:{{.Tag}}' "$ns/*" | grep -v '<none>' || true)
  for i in $tagged; do remove image "$i" docker rmi "$i" || echo "    kept image $i: in use (by another instance's containers?)"; done
  labelled=$( { docker images -a -q --no-trunc --filter "label=$ns.inputs"; docker images -a -q --no-trunc --filter "label=$ns.managed=true"; } | sort -u)
  # Two passes: an older build that is the parent of another goes once its child has.
  for pass in 1 2; do
    for id in $labelled; do
      tags=$(docker image inspect -f '{{join .RepoTags " "}}' "$id" 2>/dev/null) || continue # already gone
      if $dry; then tags=$(printf '%s\n' $tags | grep -v "^$ns/" || true); fi
      if [ -n "$tags" ]; then [ $pass = 1 ] || echo "    kept image $id: also tagged $tags"; continue; fi
      if [ $pass = 1 ]; then
        if $dry; then remove image "$id" true; else docker rmi "$id" >/dev/null 2>&1 && echo "    removed image $id" || true; fi
      else
        $dry || remove image "$id" docker rmi "$id" || echo "    kept image $id: in use (by another instance's containers?)"
      fi
    done
    $dry && break
  done
  none "$tagged$labelled"
fi

if $data; then
  echo "==> data: $datadir"
  data_target
  if [ -n "$real" ]; then
    unmount_workspaces "$real"
    # install.sh bound the data dir onto itself (to make it a shared mount) and left this note: undo only that.
    self_bind=false
    [ -e "$real/.sandboxed-self-bind" ] && mountpoint -q "$real" && self_bind=true
    for e in "${entries[@]}" "$marker"; do
      if [ -e "$real/$e" ] || [ -L "$real/$e" ]; then remove entry "$real/$e" rm -rf --one-file-system -- "$real/$e"; fi
    done
    if ! $dry && $self_bind; then
      remove mount "$real" umount -- "$real" || remove mount "$real (lazily)" umount -l -- "$real"
    fi
    if $dry; then
      :
    elif [ -z "$(ls -A -- "$real")" ]; then
      remove directory "$real" rmdir -- "$real"
    else
      echo "    kept $real: it holds files sandboxed did not create: $(ls -A -- "$real" | head -n 10 | paste -sd ' ' -)"
    fi
  fi
else
  echo "==> kept your workspaces and state in $datadir"
fi
