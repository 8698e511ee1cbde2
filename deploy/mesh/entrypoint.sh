#!/bin/sh
# Start one member of the test mesh (deploy/docker-compose.yml) with no central operator:
#   1. on first start, make the node (`init`) and import the member's sample data, one file per
#      kind: $MESH_DATA_DIR/$MEMBER/<kind>.csv;
#   2. publish the member card to the shared cards directory, atomically (temp file + rename), so
#      a reader never sees half a card;
#   3. serve in the foreground while a background loop pins every other member's card it finds
#      (peers take effect without a restart), so members join by dropping their card in; a
#      member already pinned whose card comes back with a new identity is not re-pinned.
# Run under `tini -g` so SIGTERM reaches serve and the loop alike. Arguments, if any, replace
# `serve` as the foreground command.
#
# Environment: MEMBER (required), AIF_NODE_DATA_DIR, MESH_DATA_DIR (/mesh-data), MESH_CARDS_DIR
# (/cards), MESH_PORT (7443), MESH_ADVERTISE ($MEMBER:$MESH_PORT), MESH_PIN_INTERVAL (2 s),
# MESH_PEER_KINDS and MESH_PEER_BUDGET (passed to `peers add` when set), MESH_IMPORT_LABEL.
set -eu

: "${MEMBER:?MEMBER must name this member}"
data_dir="${AIF_NODE_DATA_DIR:-/var/lib/aif-node}"
seed_dir="${MESH_DATA_DIR:-/mesh-data}/$MEMBER"
cards_dir="${MESH_CARDS_DIR:-/cards}"
port="${MESH_PORT:-7443}"
advertise="${MESH_ADVERTISE:-$MEMBER:$port}"
interval="${MESH_PIN_INTERVAL:-2}"
own_card="$cards_dir/$MEMBER.json"
seeded_mark="$data_dir/.mesh-seeded"
pinned_list="$data_dir/.mesh-pinned"

log() { printf 'mesh[%s]: %s\n' "$MEMBER" "$*" >&2; }

export AIF_NODE_DATA_DIR="$data_dir"

# `card` answers only for an initialised node: that is the first-start test.
if ! aif-node card >/dev/null 2>&1; then
    log "first start: init --name $MEMBER --listen 0.0.0.0:$port --advertise $advertise"
    aif-node init --name "$MEMBER" --listen "0.0.0.0:$port" --advertise "$advertise"
fi

# Imports are redone after a crash between init and the mark (import is all-or-nothing per file).
if [ ! -e "$seeded_mark" ]; then
    for csv in "$seed_dir"/*.csv; do
        [ -e "$csv" ] || continue
        kind="$(basename "$csv" .csv)"
        log "import $csv as $kind"
        aif-node import "$csv" --kind "$kind" ${MESH_IMPORT_LABEL:+--label "$MESH_IMPORT_LABEL"}
    done
    : >"$seeded_mark"
fi

mkdir -p "$cards_dir"
tmp_card="$cards_dir/.$MEMBER.json.$$"
aif-node card >"$tmp_card"
mv -f "$tmp_card" "$own_card"
log "card published to $own_card"

card_node_id() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1], encoding="utf-8"))["node_id"])' \
        "$1" 2>/dev/null
}

# How a card stands against the pinned peers: "pinned" (its node ID is pinned), "changed OLD_ID"
# (its name is pinned under another node ID) or "new".
card_state() {
    aif-node peers list --format json 2>/dev/null | python3 -c 'import json, sys
card = json.load(open(sys.argv[1], encoding="utf-8"))
peers = json.load(sys.stdin)
if any(p["node_id"] == card["node_id"] for p in peers):
    print("pinned")
else:
    old = [p["node_id"] for p in peers if p["name"] == card["name"]]
    print(f"changed {old[0]}" if old else "new")' "$1"
}

# Trust on first use: a member's first card is pinned; a later card under the same name with
# another identity (a re-made member, or an impostor) is NOT pinned. The node then refuses that
# member until an operator compares the new node ID out of band and re-pins it
# (`aif-node peers remove NAME` and `aif-node peers add CARD`). Cards are remembered by content
# hash, so each is looked at once.
pin_loop() {
    set +e
    touch "$pinned_list"
    while :; do
        for card in "$cards_dir"/*.json; do
            if [ ! -e "$card" ] || [ "$card" = "$own_card" ]; then continue; fi
            sum="$(sha256sum <"$card" | cut -d' ' -f1)" || continue
            grep -qxF "$sum" "$pinned_list" && continue
            peer="$(basename "$card" .json)"
            state="$(card_state "$card")" || state=""
            case "$state" in
                pinned)
                    log "$peer was already pinned"
                    echo "$sum" >>"$pinned_list"
                    continue
                    ;;
                changed*)
                    log "WARNING: $peer published a card with a new identity" \
                        "($(card_node_id "$card"); pinned: ${state#changed }); NOT pinned:" \
                        "verify it out of band, then: aif-node peers remove $peer &&" \
                        "aif-node peers add $card"
                    echo "$sum" >>"$pinned_list"
                    continue
                    ;;
                new) ;;
                *)
                    log "could not read $card or the pinned peers yet (retrying)"
                    continue
                    ;;
            esac
            if out="$(aif-node peers add "$card" \
                ${MESH_PEER_KINDS:+--kinds "$MESH_PEER_KINDS"} \
                ${MESH_PEER_BUDGET:+--budget "$MESH_PEER_BUDGET"} 2>&1)"; then
                log "pinned $peer"
                echo "$sum" >>"$pinned_list"
            else
                log "could not pin $peer yet (retrying): $out"
            fi
        done
        sleep "$interval"
    done
}

pin_loop &

[ "$#" -gt 0 ] || set -- serve
exec aif-node "$@"
