# Shell helpers shared by make_samples.sh and make_kernel_encap_samples.sh (sourced, not run):
# the run's settings and clean-up, namespaces, tcpdump captures, peer.py endpoints, kernel
# observations. The sourcing script sets HERE (its directory), OUT, NS (the namespace prefix:
# its client is $NS-cli, its server $NS-srv) and LOG_TAG, then sources this.

PYTHON=${PYTHON:-python3}
PORT=8080
KERNEL=$(uname -r)
WORK=$(mktemp -d "/tmp/$NS.XXXXXX")
BGPIDS=()

log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }

ns_del_all() {   # every $NS-* namespace removed (their veths with them)
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$NS-" || true); do
        ip netns del "$ns" 2>/dev/null || true
    done
    sleep 0.2
}

netns_cleanup() {   # what was started killed, the $NS-* namespaces and links and $WORK removed
    local p l
    for p in "${BGPIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    ns_del_all
    for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$NS-" || true); do
        ip link del "$l" 2>/dev/null || true
    done
    if [ -n "${KEEP_WORK:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap netns_cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

ns_new() {   # ns_new NAME [v6]  -- lo up, IPv6 off unless asked (no ND/MLD noise in the captures)
    ip netns add "$1"
    nsx "$1" ip link set lo up
    if [ "${2:-}" != v6 ]; then
        nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    fi
}

wait_for() {   # wait_for FILE SECONDS
    local i n=$(( ${2:-10} * 50 ))
    for ((i = 0; i < n; i++)); do [ -e "$1" ] && return 0; sleep 0.02; done
    echo "timeout waiting for $1" >&2; return 1
}

CAPPID=
capture_start() {   # capture_start NS READY-TEXT SETTLE-S CMD... ; sets CAPPID once CMD says READY-TEXT
    local ns=$1 ready=$2 settle=$3; shift 3
    local err="$WORK/cap.$RANDOM.err"
    ip netns exec "$ns" timeout 60 "$@" 2>"$err" &
    CAPPID=$!
    BGPIDS+=($CAPPID)
    local i
    for ((i = 0; i < 250; i++)); do grep -qs "$ready" "$err" && break; sleep 0.02; done
    grep -q "$ready" "$err" || { cat "$err" >&2; return 1; }
    sleep "$settle"
}

cap_start() {   # cap_start NS OUTFILE TCPDUMP-ARGS... ; sets CAPPID
    local ns=$1 out=$2; shift 2
    capture_start "$ns" 'listening on' 0.1 tcpdump --immediate-mode -U -w "$out" "$@"
}

cap_stop() {   # cap_stop PID...
    local p
    sleep 0.2
    for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

SYNC=
SRVPID=
server_start() {   # server_start SCENARIO ADDR [COUNT]
    rm -f "$SYNC/ready" "$SYNC/server_done"
    ip netns exec "$NS-srv" timeout 45 "$PYTHON" "$HERE/peer.py" server "$1" "$2" "$PORT" "$SYNC" "${3:-1}" &
    SRVPID=$!
    BGPIDS+=($SRVPID)
    wait_for "$SYNC/ready" 10
}

client_run() {   # client_run SCENARIO ADDR [EXTRA...]
    local scn=$1 addr=$2; shift 2
    nsx "$NS-cli" timeout 45 "$PYTHON" "$HERE/peer.py" client "$scn" "$addr" "$PORT" "$SYNC" "$@"
}

server_wait() { [ -n "$SRVPID" ] && wait "$SRVPID" 2>/dev/null || true; SRVPID=; }

begin() {   # begin STEM : fresh sync/obs dir
    STEM=$1
    SYNC="$WORK/$STEM"
    rm -rf "$SYNC"; mkdir -p "$SYNC"
    log "== $STEM"
}

obs() {   # obs NAME NS CMD... : record a kernel observation (e.g. ss) for the truth file
    local name=$1 ns=$2; shift 2
    { echo "# ip netns exec $ns $*"; nsx "$ns" "$@"; } >"$SYNC/obs_$name.txt" 2>&1 || true
}

publish() {   # publish FILE... : outputs made as root, given to $OUT's owner and readable by all; the first logged
    chown --reference="$OUT" "$@"; chmod 644 "$@"
    log "   -> $(basename "$1") $(stat -c %s "$1") bytes"
}

run_samples() {   # run_samples NAME... : s_NAME for each one named, or for every one in ALL when none is
    local s sel=("$@")
    [ ${#sel[@]} -gt 0 ] || sel=("${ALL[@]}")
    for s in "${sel[@]}"; do "s_$s"; done
}

SS_TW=(ss -tanoH state time-wait)
