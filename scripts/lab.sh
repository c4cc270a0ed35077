#!/usr/bin/env bash
# The middlebox lab: reproduces the idle-timeout incident end to end with three
# network namespaces joined by veth pairs:
#
#   client (CLIENT_ADDR) ---- firewall (conntrack + nftables) ---- server (SERVER_ADDR)
#
# The firewall forwards with a stateful nftables chain (established/related
# accepted, new connections only with a SYN, everything else rejected with a TCP
# reset, or dropped in --mode drop), strict conntrack (nf_conntrack_tcp_loose=0)
# and a short established timeout, so a connection idle longer than a few
# seconds is forgotten and its next packet is answered with an RST (or nothing).
# Only addresses inside the lab's own namespaces are used (198.18.0.0/15, the
# benchmarking range). Everything created is removed again, also on failure or
# Ctrl-C. Needs root, iproute2 and nftables. docs/lab.md has the walkthrough.
#
#   scripts/lab.sh [OPTIONS] up               create a lab, print its names (KEY=VALUE)
#   scripts/lab.sh --name NAME down           remove lab NAME
#   scripts/lab.sh [OPTIONS] run SCENARIO     create, run one scenario, remove
#   scripts/lab.sh [OPTIONS] demo             the incident and its diagnosis in a minute
#   scripts/lab.sh --name NAME exec ROLE CMD  run CMD in ROLE's namespace (client|firewall|server)
#   scripts/lab.sh --name NAME mode reject|drop   switch the firewall of a running lab
#
# Scenarios (the same names in both modes; the mode decides reset or timeout):
#   keepalive-off    no keepalive, idle longer than the timeout, then a write
#   keepalive-fast   SO_KEEPALIVE + TCP_KEEPIDLE below the timeout: survives
#   keepalive-slow   SO_KEEPALIVE + TCP_KEEPIDLE above the idle period: dies at the write
#   keepalive-late   TCP_KEEPIDLE between the timeout and the idle period: the first
#                    probe finds the firewall state gone
#   doctor           rstwatch doctor inside the firewall namespace
#
# Options:
#   --name PREFIX       namespace prefix (default rwlab<pid>); names are PREFIX-client,
#                       PREFIX-fw, PREFIX-server
#   --mode reject|drop  what the firewall does with packets of a forgotten connection
#                       (default reject: `reject with tcp reset`)
#   --ct-timeout SEC    nf_conntrack_tcp_timeout_established in the firewall (default 4)
#   --retries2 N        net.ipv4.tcp_retries2 in the client namespace in drop mode, so
#                       an unanswered write gives up in seconds (default 3: ~6.5 s)
#   --peer PATH         rw_peer binary (default $BUILD_DIR/tests/rw_peer; built on
#                       demand when missing)
#   --rstwatch PATH     rstwatch binary (default $BUILD_DIR/rstwatch; built on demand)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$repo/build}
[[ $build_dir = /* ]] || build_dir=$repo/$build_dir

name="" mode=reject ct_timeout=4 retries2=3
peer=${RW_PEER:-} rstwatch=${RSTWATCH:-}

die() {
    local code=$1
    shift
    echo "lab.sh: $*" >&2
    exit "$code"
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

args=()
while (($#)); do
    case $1 in
    --name | --mode | --ct-timeout | --retries2 | --peer | --rstwatch)
        (($# >= 2)) || die 2 "$1 needs a value"
        case $1 in
        --name) name=$2 ;;
        --mode) mode=$2 ;;
        --ct-timeout) ct_timeout=$2 ;;
        --retries2) retries2=$2 ;;
        --peer) peer=$2 ;;
        --rstwatch) rstwatch=$2 ;;
        esac
        shift 2
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    --)
        shift
        args+=("$@")
        break
        ;;
    -*)
        # Options after `exec ROLE` belong to the command.
        if ((${#args[@]} >= 2)) && [[ ${args[0]} == exec ]]; then
            args+=("$@")
            break
        fi
        die 2 "unknown option $1 (see scripts/lab.sh --help)"
        ;;
    *)
        args+=("$1")
        shift
        ;;
    esac
done
((${#args[@]})) || {
    usage >&2
    exit 2
}
cmd=${args[0]}

explicit_name=1
if [[ -z $name ]]; then
    explicit_name=0
    name="rwlab$$"
fi
[[ $name =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,39}$ ]] ||
    die 2 "invalid --name '$name': letters, digits, '_', '.', '-' (at most 40)"
[[ $mode == reject || $mode == drop ]] || die 2 "invalid --mode '$mode': expected reject or drop"
[[ $ct_timeout =~ ^[1-9][0-9]{0,5}$ ]] || die 2 "invalid --ct-timeout '$ct_timeout': seconds (1..999999)"
[[ $retries2 =~ ^[1-9][0-9]?$ ]] || die 2 "invalid --retries2 '$retries2': 1..99"

ns_client="$name-client"
ns_fw="$name-fw"
ns_server="$name-server"

# Per-lab addresses (198.18.N.0/24 client side, 198.19.N.0/24 server side), so
# two labs running at once never share a 4-tuple.
octet=$(($(printf '%s' "$name" | cksum | cut -d' ' -f1) % 250 + 1))
client_addr="198.18.$octet.2"
fw_client_addr="198.18.$octet.1"
fw_server_addr="198.19.$octet.1"
server_addr="198.19.$octet.2"

say() { printf '%s\n' "$*" >&2; }

need_root() {
    [[ $(id -u) -eq 0 ]] || die 3 "the lab creates network namespaces: run as root (sudo $0 ...)"
    for tool in ip nft sysctl; do
        command -v "$tool" >/dev/null ||
            die 3 "'$tool' not found: install iproute2, nftables and procps (scripts/install-deps.sh test)"
    done
}

ns_exists() { [[ -e /run/netns/$1 ]]; }

lab_exists() { ns_exists "$ns_client" || ns_exists "$ns_fw" || ns_exists "$ns_server"; }

# nftables ruleset of the firewall, in the given mode.
fw_rules() {
    local last
    if [[ $1 == drop ]]; then
        last="counter drop"
    else
        last="meta l4proto tcp counter reject with tcp reset"
    fi
    cat <<EOF
table inet rwlab {
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related counter accept
        ct state new tcp flags & (syn | ack) == syn counter accept
        $last
    }
}
EOF
}

set_fw_mode() {
    ip netns exec "$ns_fw" nft delete table inet rwlab 2>/dev/null || true
    fw_rules "$1" | ip netns exec "$ns_fw" nft -f -
    if [[ $1 == drop ]]; then
        ip netns exec "$ns_client" sysctl -qw net.ipv4.tcp_retries2="$retries2"
    else
        ip netns exec "$ns_client" sysctl -qw net.ipv4.tcp_retries2=15
    fi
}

# Removes whatever exists of lab $name: processes still inside its namespaces
# (only the lab's own), then the namespaces (their veths and nftables go too).
lab_down() {
    local ns pids
    for ns in "$ns_client" "$ns_fw" "$ns_server"; do
        ns_exists "$ns" || continue
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        if [[ -n $pids ]]; then
            # shellcheck disable=SC2086
            kill $pids 2>/dev/null || true
            sleep 0.2
            # shellcheck disable=SC2086
            kill -9 $pids 2>/dev/null || true
        fi
        ip netns del "$ns" 2>/dev/null || true
    done
    ! lab_exists
}

lab_up() {
    need_root
    if lab_exists; then
        die 3 "lab '$name' already exists (remove it with: $0 --name $name down)"
    fi
    # Until the lab is complete, any failure or signal removes what was made;
    # then the caller's traps (run, demo) are back in charge.
    local saved_traps
    saved_traps=$(trap -p EXIT INT TERM)
    trap 'rc=$?; trap - EXIT INT TERM; lab_down; exit $rc' EXIT
    trap 'exit 130' INT TERM

    ip netns add "$ns_client"
    ip netns add "$ns_fw"
    ip netns add "$ns_server"
    ip link add veth0 netns "$ns_client" type veth peer name to-client netns "$ns_fw"
    ip link add veth0 netns "$ns_server" type veth peer name to-server netns "$ns_fw"

    ip -n "$ns_client" addr add "$client_addr/24" dev veth0
    ip -n "$ns_fw" addr add "$fw_client_addr/24" dev to-client
    ip -n "$ns_fw" addr add "$fw_server_addr/24" dev to-server
    ip -n "$ns_server" addr add "$server_addr/24" dev veth0
    for ns in "$ns_client" "$ns_fw" "$ns_server"; do
        ip -n "$ns" link set lo up
    done
    ip -n "$ns_client" link set veth0 up
    ip -n "$ns_server" link set veth0 up
    ip -n "$ns_fw" link set to-client up
    ip -n "$ns_fw" link set to-server up
    ip -n "$ns_client" route add default via "$fw_client_addr"
    ip -n "$ns_server" route add default via "$fw_server_addr"

    ip netns exec "$ns_fw" sysctl -qw net.ipv4.ip_forward=1
    # The ruleset's `ct state` loads nf_conntrack, which creates the netfilter
    # sysctls of this namespace: set them afterwards.
    set_fw_mode "$mode"
    ip netns exec "$ns_fw" sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0 \
        net.netfilter.nf_conntrack_tcp_timeout_established="$ct_timeout"

    trap - EXIT INT TERM
    eval "$saved_traps"
}

print_env() {
    cat <<EOF
LAB_NAME=$name
LAB_MODE=$mode
LAB_CT_TIMEOUT=$ct_timeout
CLIENT_NS=$ns_client
FIREWALL_NS=$ns_fw
SERVER_NS=$ns_server
CLIENT_ADDR=$client_addr
FIREWALL_CLIENT_ADDR=$fw_client_addr
FIREWALL_SERVER_ADDR=$fw_server_addr
SERVER_ADDR=$server_addr
CLIENT_NETNS_INODE=$(stat -L -c %i "/run/netns/$ns_client")
FIREWALL_NETNS_INODE=$(stat -L -c %i "/run/netns/$ns_fw")
SERVER_NETNS_INODE=$(stat -L -c %i "/run/netns/$ns_server")
EOF
}

# The traffic helper is one dependency-free C++ file (tests/helpers/rw_peer.cpp).
# A build with tests has a target for it; a build without them (scripts/run.sh,
# the README's first command) does not, so it is compiled on its own.
build_peer() {
    local out
    if [[ -f $build_dir/CMakeCache.txt ]] &&
        cmake --build "$build_dir" --target help 2>/dev/null | grep -qw rw_peer; then
        say "lab.sh: building the lab's traffic helper (cmake --build $build_dir --target rw_peer) ..."
        cmake --build "$build_dir" --target rw_peer >&2 || return 1
        peer=$build_dir/tests/rw_peer
        return 0
    fi
    out=$build_dir/lab-helpers/rw_peer
    local cxx=${CXX:-c++}
    command -v "$cxx" >/dev/null ||
        die 3 "no C++ compiler ('$cxx') to build the lab's helper: run scripts/install-deps.sh build"
    say "lab.sh: building the lab's traffic helper ($out) ..."
    mkdir -p "$(dirname "$out")"
    "$cxx" -std=c++20 -O2 -Wall -Wextra -o "$out.tmp" "$repo/tests/helpers/rw_peer.cpp" >&2 || return 1
    mv -f "$out.tmp" "$out"
    peer=$out
}

find_peer() {
    if [[ -n $peer ]]; then
        [[ -x $peer ]] || die 3 "--peer $peer: not an executable"
        return 0
    fi
    local c
    for c in "$build_dir/tests/rw_peer" "$build_dir/lab-helpers/rw_peer"; do
        if [[ -x $c ]]; then
            peer=$c
            return 0
        fi
    done
    build_peer || die 3 "could not build rw_peer (see above): install the build packages (scripts/install-deps.sh build) or pass --peer PATH"
    [[ -x $peer ]] || die 3 "rw_peer not found at $peer after building it; pass --peer PATH"
}

find_rstwatch() {
    if [[ -z $rstwatch ]]; then
        rstwatch=$build_dir/rstwatch
        [[ -x $rstwatch ]] || rstwatch=$(command -v rstwatch || true)
    fi
    if [[ -z $rstwatch || ! -x $rstwatch ]]; then
        # Nothing built yet: what scripts/run.sh does, without starting a trace.
        say "lab.sh: building rstwatch into $build_dir ..."
        "$repo/scripts/install-deps.sh" build >&2 || die 3 "could not install the build packages"
        [[ -f $build_dir/CMakeCache.txt ]] ||
            cmake -S "$repo" -B "$build_dir" -DRW_BUILD_TESTS=OFF >/dev/null ||
            die 3 "could not configure a build in $build_dir"
        cmake --build "$build_dir" -j"$(nproc)" --target rstwatch >&2 ||
            die 3 "could not build rstwatch (see above)"
        rstwatch=$build_dir/rstwatch
    fi
}

# ---- scenarios ----

workdir=""
bg_pids=()

# Started by run/demo: removes the lab, our own background processes and files.
cleanup_all() {
    local p
    for p in "${bg_pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${bg_pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    bg_pids=()
    lab_down || say "lab.sh: could not remove every namespace of lab '$name'"
    [[ -n $workdir ]] && rm -rf "$workdir"
    workdir=""
}

# Waits (bounded) until FILE has a line starting with PREFIX; prints the rest.
wait_line() {
    local file=$1 prefix=$2 timeout_ds=${3:-100} i line
    for ((i = 0; i < timeout_ds; i++)); do
        line=$(grep -m1 "^$prefix" "$file" 2>/dev/null || true)
        if [[ -n $line ]]; then
            printf '%s\n' "${line#"$prefix"}" | sed 's/^ //'
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Idle period and keepalive settings of each scenario, from the timeout T:
# idle T+3 s; fast keepalive T/2; slow keepalive beyond the idle period; late
# keepalive between T and the idle period.
idle_s() { echo $((ct_timeout + 3)); }

scenario_client_args() {
    local t=$ct_timeout
    case $1 in
    keepalive-off) ;;
    keepalive-fast) echo "--keepalive --keepidle $(((t / 2) > 0 ? t / 2 : 1)) --keepintvl 1" ;;
    keepalive-slow) echo "--keepalive --keepidle $((t + 6)) --keepintvl 1" ;;
    keepalive-late) echo "--keepalive --keepidle $((t + 1)) --keepintvl 1 --keepcnt 1" ;;
    *) return 1 ;;
    esac
}

# One scenario on the running lab: a server that holds its connection, a client
# that connects, idles, writes and reports what happened. Sets peer_result to
# the client's result ("OK", "errno 104", ...). Not in a subshell, so that
# bg_pids stays visible to the cleanup trap.
peer_result=""
peer_server=""
run_peers() {
    local scenario=$1 extra sport cpid spid idle hold
    extra=$(scenario_client_args "$scenario") || die 2 "unknown scenario '$scenario'"
    idle=$(idle_s)
    # How long the client waits after its write: an RST arrives at once; a
    # silent drop takes the tcp_retries2 back-off: measured 6.6 s for retries2=3,
    # one RTO past (2^(retries2+1) - 1) x 200 ms.
    if [[ $mode == drop ]]; then
        hold=$((200 * ((4 << retries2) - 1) + 3000))
    else
        hold=2000
    fi
    : >"$workdir/server.out"
    : >"$workdir/client.out"
    ip netns exec "$ns_server" "$peer" server --addr "$server_addr" --port 0 \
        --hold-ms $((idle * 1000 + hold + 2000)) --name rw_lab_srv >"$workdir/server.out" 2>&1 &
    spid=$!
    bg_pids+=("$spid")
    sport=$(wait_line "$workdir/server.out" listening) || die 4 "the lab server did not start"
    # shellcheck disable=SC2086
    ip netns exec "$ns_client" "$peer" client --addr "$server_addr" --port "$sport" \
        --idle-ms $((idle * 1000)) --write --hold-ms "$hold" --name rw_lab_cli $extra \
        >"$workdir/client.out" 2>&1 &
    cpid=$!
    bg_pids+=("$cpid")
    wait_line "$workdir/client.out" connected >/dev/null || die 4 "the lab client did not connect"
    say "  client pid $cpid (comm rw_lab_cli) connected to $server_addr:$sport${extra:+ with $extra}"
    say "  idle ${idle}s (firewall forgets after ${ct_timeout}s), then one write ..."
    peer_result=$(wait_line "$workdir/client.out" result $(((idle * 1000 + hold) / 100 + 50))) ||
        die 4 "the lab client gave no result"
    wait "$cpid" 2>/dev/null || true
    peer_server=$spid
}

# Ends the scenario's server. Its close may itself meet the firewall (an RST
# for a forgotten connection) or send one (unread data): that is teardown.
stop_server() {
    [[ -n $peer_server ]] || return 0
    kill "$peer_server" 2>/dev/null || true
    wait "$peer_server" 2>/dev/null || true
    forget_pids "$peer_server"
    peer_server=""
}

# Drops finished processes from bg_pids (the trace of the demo stays).
forget_pids() {
    local keep=() p q gone
    for p in "${bg_pids[@]}"; do
        gone=0
        for q in "$@"; do [[ $p == "$q" ]] && gone=1; done
        ((gone)) || keep+=("$p")
    done
    bg_pids=("${keep[@]}")
}

describe_result() {
    case $1 in
    OK) echo "the write went through: the connection survived" ;;
    "errno 104") echo "ECONNRESET (Connection reset by peer): the firewall answered with an RST" ;;
    "errno 110") echo "ETIMEDOUT (Connection timed out): the firewall dropped the packets silently" ;;
    *) echo "$1" ;;
    esac
}

run_doctor() {
    find_rstwatch
    if ! "$rstwatch" doctor --help >/dev/null 2>&1; then
        say "  (this rstwatch has no doctor subcommand)"
        return 0
    fi
    local rc=0
    ip netns exec "$ns_fw" "$rstwatch" doctor --format text || rc=$?
    say "  rstwatch doctor exit code: $rc (1 = a check failed)"
}

cmd_run() {
    local scenario=${args[1]:-}
    [[ -n $scenario ]] || die 2 "run needs a SCENARIO (keepalive-off, keepalive-fast, keepalive-slow, keepalive-late, doctor)"
    if [[ $scenario != doctor ]]; then
        scenario_client_args "$scenario" >/dev/null || die 2 "unknown scenario '$scenario'"
        find_peer
    fi
    need_root
    trap cleanup_all EXIT
    trap 'exit 130' INT TERM
    workdir=$(mktemp -d /tmp/rwlab.XXXXXX)
    lab_up
    print_env
    say "lab '$name' up: $client_addr -> firewall ($mode, conntrack timeout ${ct_timeout}s) -> $server_addr"
    if [[ $scenario == doctor ]]; then
        run_doctor
        return 0
    fi
    run_peers "$scenario"
    stop_server
    echo "RESULT=$peer_result"
    say "  client: $(describe_result "$peer_result")"
}

# ---- demo ----

trace_lines_shown=0

# Prints the trace lines not shown yet; JSON lines become a short readable block.
show_trace() {
    local file=$workdir/trace.out line shown=0 text
    [[ -f $file ]] || return 0
    while IFS= read -r line; do
        trace_lines_shown=$((trace_lines_shown + 1))
        if [[ $line == \{* ]] && command -v jq >/dev/null; then
            text=$(jq -r 'select(.event == "tcp_reset" or .event == "tcp_timeout") |
                "  rstwatch: \(.event) \(.direction // .cause) owned by \(.process.comm // "?") (pid \(.process.pid // "?"))" +
                " \(.local.addr):\(.local.port) -> \(.remote.addr):\(.remote.port)\n" +
                "            verdict \(.verdict), origin \(.origin // "n/a"), idle \(.idle_ms) ms," +
                " keepalive \(if .keepalive.enabled then "on (idle \(.keepalive.idle_s)s)" else "off" end)\n" +
                "            \(.explanation)"' <<<"$line" 2>/dev/null || true)
            [[ -n $text ]] && printf '%s\n' "$text" && shown=1
        elif [[ $line != \{* ]]; then
            printf '  %s\n' "$line"
            shown=1
        fi
    done < <(tail -n +$((trace_lines_shown + 1)) "$file")
    ((shown)) || echo "  rstwatch: nothing to report (no reset, no timeout)"
}

# Ends a demo scenario without showing what its teardown makes the tracer see.
end_scenario() {
    stop_server
    sleep 0.3
    trace_lines_shown=$(wc -l <"$workdir/trace.out")
}

cmd_demo() {
    find_peer
    find_rstwatch
    need_root
    trap cleanup_all EXIT
    trap 'exit 130' INT TERM
    workdir=$(mktemp -d /tmp/rwlab.XXXXXX)
    say "== rstwatch middlebox lab =="
    say "Three network namespaces: client $client_addr -> firewall -> server $server_addr."
    say "The firewall tracks connections (conntrack) and forgets one idle for ${ct_timeout}s;"
    say "a packet of a forgotten connection is rejected with a TCP reset."
    lab_up
    local inode
    inode=$(stat -L -c %i "/run/netns/$ns_client")
    "$rstwatch" trace --format text --middlebox-timeout "${ct_timeout}s" --events reset,timeout \
        --netns "$inode" >"$workdir/trace.out" 2>"$workdir/trace.err" &
    bg_pids+=("$!")
    local i
    for ((i = 0; i < 150; i++)); do
        [[ -s $workdir/trace.out ]] && break
        kill -0 "${bg_pids[0]}" 2>/dev/null || break
        sleep 0.1
    done
    [[ -s $workdir/trace.out ]] || die 4 "rstwatch trace did not start: $(cat "$workdir/trace.err")"
    trace_lines_shown=$(wc -l <"$workdir/trace.out")
    say "rstwatch trace is watching the client's namespace (--middlebox-timeout ${ct_timeout}s)."
    say ""

    say "1) The incident: the application never enabled SO_KEEPALIVE."
    run_peers keepalive-off
    say "  client: $(describe_result "$peer_result")"
    sleep 0.5
    show_trace
    end_scenario
    say "  The RST came from the firewall, not from the server (origin middlebox): the server"
    say "  still holds its half of the connection and never sent a reset."
    say ""

    say "2) The fix: SO_KEEPALIVE with TCP_KEEPIDLE below the firewall's timeout."
    run_peers keepalive-fast
    say "  client: $(describe_result "$peer_result")"
    sleep 0.5
    show_trace
    end_scenario
    say ""

    say "3) The silent form: the firewall drops instead of rejecting (tcp_retries2=$retries2 on the client)."
    mode=drop
    set_fw_mode drop
    run_peers keepalive-off
    say "  client: $(describe_result "$peer_result")"
    sleep 0.5
    show_trace
    end_scenario
    say ""

    say "4) rstwatch doctor inside the firewall's namespace:"
    run_doctor
    say ""
    say "Done; removing the lab."
}

case $cmd in
up)
    lab_up
    print_env
    ;;
down)
    ((explicit_name)) || die 2 "down needs --name NAME (the LAB_NAME printed by up)"
    need_root
    lab_down || die 4 "could not remove every namespace of lab '$name'"
    ;;
run) cmd_run ;;
demo) cmd_demo ;;
exec)
    ((explicit_name)) || die 2 "exec needs --name NAME"
    ((${#args[@]} >= 3)) || die 2 "usage: exec client|firewall|server CMD..."
    case ${args[1]} in
    client) ns=$ns_client ;;
    firewall | fw) ns=$ns_fw ;;
    server) ns=$ns_server ;;
    *) die 2 "unknown role '${args[1]}': client, firewall or server" ;;
    esac
    ns_exists "$ns" || die 3 "lab '$name' is not up"
    exec ip netns exec "$ns" "${args[@]:2}"
    ;;
mode)
    ((explicit_name)) || die 2 "mode needs --name NAME"
    [[ ${args[1]:-} == reject || ${args[1]:-} == drop ]] || die 2 "usage: mode reject|drop"
    need_root
    lab_exists || die 3 "lab '$name' is not up"
    set_fw_mode "${args[1]}"
    ;;
*) die 2 "unknown command '$cmd' (up, down, run, demo, exec, mode; see --help)" ;;
esac
