# Sourced by the image build scripts: skip an image whose inputs are unchanged, and build one quietly.

# image_current IMAGE INPUTS: true when IMAGE was built from INPUTS (a hash in its sandboxed.inputs label).
image_current() {
  [ "$(docker image inspect -f '{{index .Config.Labels "sandboxed.inputs"}}' "$1" 2>/dev/null)" = "$2" ]
}

# build_image IMAGE INPUTS CONTEXT: builds with the classic builder (engines here may predate BuildKit),
# printing the end of the output only when the build fails.
build_image() {
  echo "building $1"
  local out
  if ! out=$(DOCKER_BUILDKIT=0 docker build --label "sandboxed.inputs=$2" -t "$1" "$3" 2>&1); then
    echo "$out" | tail -n 30 >&2
    echo "error: building $1 failed (output above)" >&2
    return 1
  fi
}
