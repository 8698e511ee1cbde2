#!/usr/bin/env bash
# `make mesh`: build the node image, bring the three-member compose mesh up, let every member
# match the others, and check each member's collision report against the sample data's ground
# truth; then take everything down (containers, network, volumes), on failure too.
#
# Usage: deploy/mesh.sh [run|build]
#   run     (default) build, up, wait for a healthy and fully pinned mesh, match, check, down
#   build   only the images: the base (skipped when present), the wheelhouse, the node image
# Environment: AIF_NODE_IMAGE (default aif-node:dev), AIF_BASE_IMAGE (default
#   aif-node-base:bookworm), AIF_MESH_PROJECT (compose project; default unique per run),
#   AIF_MESH_TIMEOUT (seconds to wait for health and pinning, default 180),
#   PYTHON (host interpreter with pip; default the repository's .venv, else python3).
# Works with the `docker compose` plugin and with Debian's docker-compose 1.29.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
compose_file="$here/docker-compose.yml"
truth="$here/mesh/data/ground_truth.json"
members=(bank lender platform)

export AIF_NODE_IMAGE="${AIF_NODE_IMAGE:-aif-node:dev}"
export AIF_BASE_IMAGE="${AIF_BASE_IMAGE:-aif-node-base:bookworm}"
project="${AIF_MESH_PROJECT:-aifmesh-$(date +%s)-$$}"
timeout_s="${AIF_MESH_TIMEOUT:-180}"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$repo/.venv/bin/python" ]]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHON

log() { printf 'mesh: %s\n' "$*" >&2; }
die() {
    printf 'mesh: FAILED: %s\n' "$*" >&2
    exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

declare -A timing=()
timing_order=()
record() { # name start
    timing[$1]="$(since "$2")"
    timing_order+=("$1")
    log "$1: ${timing[$1]}s"
}
print_timings() {
    local name
    ((${#timing_order[@]})) || return 0
    log "timings (s):"
    for name in "${timing_order[@]}"; do printf 'mesh:   %-22s %8s\n' "$name" "${timing[$name]}" >&2; done
}

# The venv stage gets a tag of its own (NAME-build-venv:TAG), so that neither stage of an
# earlier build is left behind as a dangling image: after a build, the image each tag named before
# is removed when the tag moved (and nothing else uses it).
venv_image() {
    local name="${AIF_NODE_IMAGE%:*}" tag="${AIF_NODE_IMAGE##*:}"
    if [[ "$name" == "$AIF_NODE_IMAGE" || "$tag" == */* ]]; then
        name="$AIF_NODE_IMAGE"
        tag=latest
    fi
    printf '%s-build-venv:%s\n' "$name" "$tag"
}

image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

docker_build() { # tag, extra docker build arguments...
    local tag="$1" out
    shift
    # Output only on failure: the legacy builder is chatty, and the result is one line.
    if ! out="$(docker build --build-arg "BASE_IMAGE=$AIF_BASE_IMAGE" -t "$tag" "$@" "$here" 2>&1)"; then
        printf '%s\n' "$out" >&2
        die "docker build of $tag failed"
    fi
}

build() {
    local t venv old_venv old_node
    t="$(now)"
    bash "$here/base/build.sh"
    record "build: base image" "$t"
    t="$(now)"
    PYTHON="$PYTHON" bash "$here/wheelhouse.sh"
    record "build: wheelhouse" "$t"
    t="$(now)"
    venv="$(venv_image)"
    old_venv="$(image_id "$venv")"
    old_node="$(image_id "$AIF_NODE_IMAGE")"
    docker_build "$venv" --target venv
    docker_build "$AIF_NODE_IMAGE"
    if [[ -n "$old_venv" && "$old_venv" != "$(image_id "$venv")" ]]; then
        docker rmi "$old_venv" >/dev/null 2>&1 || true
    fi
    if [[ -n "$old_node" && "$old_node" != "$(image_id "$AIF_NODE_IMAGE")" ]]; then
        docker rmi "$old_node" >/dev/null 2>&1 || true
    fi
    record "build: node image" "$t"
    log "image $AIF_NODE_IMAGE: $(($(docker image inspect --format '{{.Size}}' "$AIF_NODE_IMAGE") / 1000000)) MB"
}

compose_cmd=()
pick_compose() {
    if docker compose version >/dev/null 2>&1; then
        compose_cmd=(docker compose)
    elif command -v docker-compose >/dev/null 2>&1; then
        compose_cmd=(docker-compose)
    else
        die "neither 'docker compose' nor 'docker-compose' is installed"
    fi
}
compose() { "${compose_cmd[@]}" -f "$compose_file" -p "$project" "$@"; }

declare -A cid=()

teardown() {
    local rc=$?
    trap - EXIT INT TERM
    if ((${#compose_cmd[@]})); then
        if ((rc != 0)) && ((${#cid[@]})); then
            log "last log lines of each member:"
            local m
            for m in "${members[@]}"; do
                [[ -n "${cid[$m]:-}" ]] && docker logs --tail 15 "${cid[$m]}" 2>&1 | sed "s/^/  $m| /" >&2
            done
        fi
        log "tearing down project $project"
        compose down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1 ||
            log "warning: 'down' failed; check: docker ps -a --filter label=com.docker.compose.project=$project"
    fi
    print_timings
    exit "$rc"
}

# Run aif-node in a member; its output on stdout, its stderr passed on.
node() { # member args...
    local m="$1"
    shift
    docker exec "${cid[$m]}" aif-node "$@"
}

wait_healthy() {
    local deadline=$((SECONDS + timeout_s)) m state pending
    while :; do
        pending=()
        for m in "${members[@]}"; do
            state="$(docker inspect --format '{{.State.Status}}' "${cid[$m]}")"
            [[ "$state" == running ]] || die "$m is $state, not running"
            node "$m" health --timeout 2 >/dev/null 2>&1 || pending+=("$m")
        done
        ((${#pending[@]} == 0)) && return 0
        ((SECONDS < deadline)) || die "not healthy after ${timeout_s}s: ${pending[*]}"
        sleep 1
    done
}

wait_pinned() {
    local deadline=$((SECONDS + timeout_s)) m other names pending
    while :; do
        pending=()
        for m in "${members[@]}"; do
            names="$(node "$m" peers list --format json |
                "$PYTHON" -c 'import json, sys; print(" ".join(p["name"] for p in json.load(sys.stdin)))')"
            for other in "${members[@]}"; do
                [[ "$other" == "$m" ]] && continue
                [[ " $names " == *" $other "* ]] || pending+=("$m->$other")
            done
        done
        ((${#pending[@]} == 0)) && return 0
        ((SECONDS < deadline)) || die "peers not pinned after ${timeout_s}s: ${pending[*]}"
        sleep 1
    done
}

# Every member matches against the other two at the same time, as members of a real federation
# would; each match's output goes to a file, shown when it failed.
match_all() {
    local m failed=() tmp
    tmp="$(mktemp -d)"
    declare -A pid=()
    for m in "${members[@]}"; do
        node "$m" match >"$tmp/$m.out" 2>&1 &
        pid[$m]=$!
    done
    for m in "${members[@]}"; do
        if ! wait "${pid[$m]}"; then
            failed+=("$m")
            sed "s/^/  $m| /" "$tmp/$m.out" >&2
        fi
    done
    rm -rf "$tmp"
    ((${#failed[@]} == 0)) || die "match failed in: ${failed[*]}"
}

check_reports() {
    local m report
    for m in "${members[@]}"; do
        report="$(node "$m" report --format json)"
        "$PYTHON" "$here/mesh/check_report.py" "$m" "$truth" <<<"$report" ||
            die "$m: report differs from $truth"
        node "$m" audit verify >/dev/null || die "$m: audit verify failed"
    done
}

main() {
    local cmd="${1:-run}" t
    case "$cmd" in
        build)
            build
            print_timings
            return 0
            ;;
        run) ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            return 0
            ;;
        *) die "unknown command: $cmd (run|build)" ;;
    esac
    docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed)"
    pick_compose
    build
    trap teardown EXIT
    trap 'exit 130' INT TERM
    log "compose project $project (${compose_cmd[*]})"
    t="$(now)"
    local out
    out="$(compose up --detach --no-build 2>&1)" || {
        printf '%s\n' "$out" >&2
        die "compose up failed"
    }
    local m
    for m in "${members[@]}"; do
        cid[$m]="$(compose ps -q "$m")"
        [[ -n "${cid[$m]}" ]] || die "no container for $m"
    done
    wait_healthy
    record "mesh healthy" "$t"
    wait_pinned
    record "mesh healthy and pinned" "$t"
    t="$(now)"
    match_all
    record "matching (all at once)" "$t"
    check_reports
    log "every report matches $(basename "$truth"); every audit log is intact"
}

main "$@"
