#!/usr/bin/env bash
# Build the node's base image locally from Debian's packages, for hosts that cannot pull from a
# container registry. The result, aif-node-base:bookworm, stands in for python:3.11-slim as the
# Dockerfile's BASE_IMAGE: Debian bookworm with python3 (3.11), python3-venv, libsodium23,
# ca-certificates and tini, no docs or man pages, apt lists cleaned.
#
# The Debian mirror is read from this host's apt sources, never written down here, so the script
# works behind whatever mirror or proxy the host's apt already uses.
#
# Usage: deploy/base/build.sh [--force] [--debootstrap] [--print-sources]
#   --force          rebuild even when the image exists
#   --debootstrap    use debootstrap instead of mmdebstrap (the fallback, forced)
#   --print-sources  print the apt source lines that would be used, and exit
# Environment: AIF_BASE_IMAGE (default aif-node-base:bookworm), APT_SOURCES_DIR (default /etc/apt)
set -euo pipefail

SUITE=bookworm
IMAGE="${AIF_BASE_IMAGE:-aif-node-base:${SUITE}}"
APT_DIR="${APT_SOURCES_DIR:-/etc/apt}"
PACKAGES=(python3 python3-venv libsodium23 ca-certificates tini)
INCLUDE="$(IFS=, && echo "${PACKAGES[*]}")"

force=0
use_debootstrap=0
print_only=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        --debootstrap) use_debootstrap=1 ;;
        --print-sources) print_only=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "build.sh: unknown argument: $arg" >&2
            exit 2
            ;;
    esac
done

log() { printf 'base: %s\n' "$*" >&2; }

# Print "URI SUITE COMPONENT..." for every enabled binary (deb) source of $SUITE and its companion
# suites (-updates, -security, ...), from deb822 *.sources files and one-line sources.list files.
debian_sources() {
    local files=()
    [[ -f "$APT_DIR/sources.list" ]] && files+=("$APT_DIR/sources.list")
    local f
    for f in "$APT_DIR"/sources.list.d/*.list "$APT_DIR"/sources.list.d/*.sources; do
        [[ -f "$f" ]] && files+=("$f")
    done
    ((${#files[@]})) || return 0
    awk -v suite="$SUITE" '
        function wanted(s) { return s == suite || index(s, suite "-") == 1 || index(s, suite "/") == 1 }
        function flush(    i, j, nu, ns, u, s) {
            if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no") {
                nu = split(uris, u, " "); ns = split(suites, s, " ")
                for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
                    if (wanted(s[j])) print u[i], s[j], comps
            }
            types = uris = suites = comps = enabled = ""
        }
        FNR == 1 { if (deb822) flush(); deb822 = (FILENAME ~ /\.sources$/) }
        /^[ \t]*#/ { next }
        { sub(/#.*/, ""); sub(/[ \t]+$/, "") }
        deb822 && /^$/ { flush(); next }
        deb822 && /^[A-Za-z-]+:/ {
            key = tolower(substr($0, 1, index($0, ":") - 1))
            val = substr($0, index($0, ":") + 1); gsub(/^[ \t]+/, "", val)
            if (key == "types") types = val
            else if (key == "uris") uris = val
            else if (key == "suites") suites = val
            else if (key == "components") comps = val
            else if (key == "enabled") enabled = val
            next
        }
        deb822 && /^[ \t]/ { next }
        !deb822 && $1 == "deb" {
            i = 2
            if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if (i + 1 <= NF && wanted($(i + 1))) {
                line = $i " " $(i + 1)
                for (k = i + 2; k <= NF; k++) line = line " " $k
                print line
            }
        }
        END { if (deb822) flush() }
    ' "${files[@]}" | awk '!seen[$0]++'
}

mapfile -t SOURCES < <(debian_sources)
if ((${#SOURCES[@]} == 0)); then
    echo "build.sh: no enabled 'deb' source for $SUITE in $APT_DIR/sources.list{,.d/}" >&2
    exit 1
fi
if ((print_only)); then
    printf '%s\n' "${SOURCES[@]}"
    exit 0
fi

if ((!force)) && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE exists; skipping (use --force to rebuild)"
    exit 0
fi

ensure_tool() {
    command -v "$1" >/dev/null 2>&1 && return 0
    log "installing $1 from Debian's packages"
    if [[ $(id -u) -ne 0 ]]; then
        echo "build.sh: $1 is missing and installing it needs root" >&2
        return 1
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

if ((!use_debootstrap)) && ! ensure_tool mmdebstrap; then
    log "mmdebstrap unavailable; falling back to debootstrap"
    use_debootstrap=1
fi
if ((use_debootstrap)); then
    ensure_tool debootstrap
fi

# Paths dpkg never unpacks: documentation (licences kept), manuals, translations.
DPKG_EXCLUDES=(
    'path-exclude=/usr/share/doc/*'
    'path-include=/usr/share/doc/*/copyright'
    'path-exclude=/usr/share/man/*'
    'path-exclude=/usr/share/info/*'
    'path-exclude=/usr/share/groff/*'
    'path-exclude=/usr/share/lintian/*'
    'path-exclude=/usr/share/linda/*'
    'path-exclude=/usr/share/locale/*'
    'path-include=/usr/share/locale/locale.alias'
)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tarball="$work/rootfs.tar"
started=$(date +%s.%N)

if ((!use_debootstrap)); then
    dpkgopts=()
    for opt in "${DPKG_EXCLUDES[@]}"; do dpkgopts+=("--dpkgopt=$opt"); done
    mirrors=()
    for line in "${SOURCES[@]}"; do mirrors+=("deb $line"); done
    # Merged /usr set up by symlinks (debootstrap's way), not by the usrmerge package, which
    # would pull in perl.
    hookdirs=()
    [[ -d /usr/share/mmdebstrap/hooks/merged-usr ]] &&
        hookdirs+=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
    log "mmdebstrap $SUITE from: ${SOURCES[*]}"
    # variant=apt: Essential packages plus apt, so derived images can still apt-get install.
    # mmdebstrap's own apt cleanup is skipped: the hook empties lists and caches outright.
    # shellcheck disable=SC2016 # $1 is the hook's argument, expanded by mmdebstrap's shell
    mmdebstrap --variant=apt --mode=auto --format=tar \
        --include="$INCLUDE" \
        --aptopt='APT::Install-Recommends "false"' \
        --aptopt='APT::Install-Suggests "false"' \
        --aptopt='Acquire::Languages "none"' \
        "${dpkgopts[@]}" \
        "${hookdirs[@]}" \
        --skip=cleanup/apt \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/apt/* "$1"/var/log/dpkg.log "$1"/var/cache/ldconfig/aux-cache "$1"/tmp/* "$1"/var/tmp/*' \
        "$SUITE" "$tarball" "${mirrors[@]}"
else
    root="$work/root"
    main_uri="$(awk '$2 == s { print $1; exit }' s="$SUITE" <<<"$(printf '%s\n' "${SOURCES[@]}")")"
    if [[ -z "$main_uri" ]]; then
        echo "build.sh: no source for suite $SUITE itself; debootstrap needs one" >&2
        exit 1
    fi
    mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
    printf '%s\n' "${DPKG_EXCLUDES[@]}" >"$root/etc/dpkg/dpkg.cfg.d/01-aif-slim"
    log "debootstrap $SUITE from $main_uri"
    debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$main_uri" >&2
    printf 'deb %s\n' "${SOURCES[@]}" >"$root/etc/apt/sources.list"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/apt/* \
        "$root"/var/log/dpkg.log "$root"/var/cache/ldconfig/aux-cache "$root"/tmp/* \
        "$root"/var/tmp/* "$root"/usr/share/man/* "$root"/usr/share/info/*
    find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
    tar --numeric-owner --xattrs -C "$root" -cf "$tarball" .
fi

log "importing as $IMAGE"
docker import \
    --message "Debian $SUITE base for aif-node, built by deploy/base/build.sh" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$IMAGE" >/dev/null

elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
size=$(docker image inspect --format '{{.Size}}' "$IMAGE")
log "built $IMAGE in ${elapsed}s; size $((size / 1000000)) MB"
