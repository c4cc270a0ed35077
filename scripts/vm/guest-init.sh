#!/bin/busybox sh
# PID 1 of a kernel-matrix guest (scripts/vm-matrix.sh packs it as /init with a
# static busybox, rstwatch and rw_peer). Mounts what rstwatch needs, runs the
# real agent against scripted loopback traffic, prints everything on the serial
# console between markers, and powers off. It records and never judges: the
# host checks the events (scripts/vm/check.py).
#
# Console protocol, one item per line:
#   @@RW-FACT key value        what the scenario did (pids, ports, results)
#   @@RW-BEGIN name ... @@RW-END name   a captured file (NDJSON, stderr)
#   @@RW-DONE                  the scenario ran to its end
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t sysfs sysfs /sys
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# Kernel messages would interleave with the NDJSON on the console.
echo 1 >/proc/sys/kernel/printk
ip link set lo up

P=/bin/rw_peer
T=/tmp
fact() { echo "@@RW-FACT $1 $2"; }
section() {
    echo "@@RW-BEGIN $1"
    [ -f "$2" ] && cat "$2"
    echo "@@RW-END $1"
}
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
# wait_for FILE PREFIX: prints the rest of the first line of FILE that starts
# with PREFIX; gives up after 60 s (software emulation is slow).
wait_for() {
    i=0
    while [ $i -lt 600 ]; do
        v=$(sed -n "s/^$2 //p" "$1" 2>/dev/null | head -n 1)
        if [ -n "$v" ]; then
            echo "$v"
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    echo "@@RW-ERROR timeout waiting for '$2' in $1" >/dev/console
    echo 0
    return 1
}
# (rw_peer prints "connected PORT MS" and "aborted MS": MS is CLOCK_MONOTONIC,
# so the checker knows the idle period the processes lived.)
# wait_line FILE LINE: until FILE has exactly this line; 60 s at most.
wait_line() {
    i=0
    while ! grep -qx "$2" "$1" 2>/dev/null; do
        if [ $i -ge 600 ]; then
            echo "@@RW-ERROR timeout waiting for the line '$2' in $1" >/dev/console
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
}
# wait_exit PID: waits for a background child, at most 60 s.
wait_exit() {
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 600 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
# start_agent FILE ARGS...: rstwatch trace in the background, up to session_start.
start_agent() {
    out=$1
    shift
    rstwatch trace "$@" >"$out" 2>"$out.err" &
    agent=$!
    i=0
    while ! grep -q '"session_start"' "$out" 2>/dev/null; do
        if ! kill -0 $agent 2>/dev/null || [ $i -ge 1200 ]; then
            echo "@@RW-ERROR rstwatch trace $* did not start"
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
}
stop_agent() {
    kill -INT $agent 2>/dev/null
    wait_exit $agent
}

t0=$(now_ms)
fact release "$(uname -r)"
fact netns "$(stat -L -c %i /proc/self/ns/net)"
# Non-default sysctls: a value read from the wrong place cannot pass by luck.
echo 1234 >/proc/sys/net/ipv4/tcp_keepalive_time
echo 5 >/proc/sys/net/ipv4/tcp_keepalive_probes
for k in tcp_keepalive_time tcp_keepalive_intvl tcp_keepalive_probes; do
    fact "sysctl_$k" "$(cat /proc/sys/net/ipv4/$k)"
done
for f in /sys/kernel/btf/vmlinux /boot/config-$(uname -r); do
    [ -e "$f" ] && fact have "$f"
done

# ---- early: a connection made BEFORE the agent; only the start-up scan can
# name its owners. The server aborts it (SO_LINGER 0) once the agent runs. ----
mkfifo $T/early.go
exec 3<>$T/early.go
$P server --wait-line --abort-after-ms 500 --name rw_early_srv <&3 >$T/early_srv &
fact early_srv_pid $!
fact early_sport "$(wait_for $T/early_srv listening)"
$P client --port "$(wait_for $T/early_srv listening)" --hold-ms 30000 --name rw_early >$T/early_cli &
fact early_cli_pid $!
fact early_cport "$(wait_for $T/early_cli connected | cut -d" " -f1)"
wait_for $T/early_srv accepted >/dev/null

t_agent=$(now_ms)
start_agent $T/trace.ndjson && fact agent_ready_ms $(($(now_ms) - t_agent))
fact agent_pid "$agent"

echo go >&3
fact early_result "$(wait_for $T/early_cli result)"

# ---- linger: SO_LINGER 0 abort of a connection made while the agent runs ----
$P server --abort-after-ms 2000 --name rw_srv >$T/linger_srv &
fact linger_srv_pid $!
sport=$(wait_for $T/linger_srv listening)
fact linger_sport "$sport"
$P client --port "$sport" --hold-ms 15000 --name rw_cli >$T/linger_cli &
fact linger_cli_pid $!
connected=$(wait_for $T/linger_cli connected)
fact linger_cport "${connected%% *}"
fact linger_connected_ms "${connected#* }"
fact linger_aborted_ms "$(wait_for $T/linger_srv aborted)"
fact linger_result "$(wait_for $T/linger_cli result)"

# ---- keepalive: per-socket options vs sysctl; `rstwatch audit` while both
# connections are open, then both servers abort. ----
# One FIFO per server: a reader's stdio buffer could swallow both lines.
mkfifo $T/ka_on.go $T/ka_off.go
exec 4<>$T/ka_on.go 5<>$T/ka_off.go
for v in on off; do
    if [ $v = on ]; then fd=4; else fd=5; fi
    $P server --wait-line --abort-after-ms 0 --name rw_ka_srv <&$fd >$T/ka_${v}_srv &
    fact ka_${v}_srv_pid $!
    fact ka_${v}_sport "$(wait_for $T/ka_${v}_srv listening)"
done
$P client --port "$(wait_for $T/ka_on_srv listening)" --keepalive --keepidle 42 --keepcnt 3 \
    --hold-ms 30000 --name rw_ka_on >$T/ka_on_cli &
fact ka_on_cli_pid $!
$P client --port "$(wait_for $T/ka_off_srv listening)" --hold-ms 30000 --name rw_ka_off >$T/ka_off_cli &
fact ka_off_cli_pid $!
fact ka_on_cport "$(wait_for $T/ka_on_cli connected | cut -d" " -f1)"
fact ka_off_cport "$(wait_for $T/ka_off_cli connected | cut -d" " -f1)"
wait_for $T/ka_on_srv accepted >/dev/null
wait_for $T/ka_off_srv accepted >/dev/null
timeout 120 rstwatch audit >$T/audit.ndjson 2>$T/audit.err
fact audit_rc $?
echo go >&4
echo go >&5
fact ka_on_result "$(wait_for $T/ka_on_cli result)"
fact ka_off_result "$(wait_for $T/ka_off_cli result)"

# ---- refused: connect to a port that was just released ----
$P server --port 0 --hold-ms 0 >$T/probe &
probe=$!
port=$(wait_for $T/probe listening)
kill -9 $probe
wait $probe 2>/dev/null
fact refused_port "$port"
$P refused "$port" --name rw_refused >$T/refused &
fact refused_pid $!
fact refused_cport "$(wait_for $T/refused local_port)"
fact refused_errno "$(wait_for $T/refused errno)"

sleep 0.3
stop_agent
fact agent_exit "$?"

# ---- sockopts: keepalive_set events need the syscall tracepoints ----
start_agent $T/ka_events.ndjson --events keepalive
fact ka_agent_pid "$agent"
$P server --hold-ms 3000 >$T/so_srv &
so_srv=$!
$P sockopts --port "$(wait_for $T/so_srv listening)" --name rw_sockopts >$T/so_cli &
fact sockopts_pid $!
wait_for $T/so_cli connected >/dev/null
i=0
while [ "$(grep -c '^sockopt ' $T/so_cli)" -lt 8 ] && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
grep '^sockopt ' $T/so_cli | while read -r _ name level value result fd; do
    fact sockopt "$name $level $value $result $fd"
done
sleep 0.3
stop_agent
wait_exit $so_srv

# ---- cgroup: --cgroup keeps sockets created in that cgroup or below it ----
mkdir -p /sys/fs/cgroup/rwmx/inner
start_agent $T/cgroup.ndjson --events reset --cgroup /rwmx
fact cg_agent_pid "$agent"
for i in 0 1; do
    $P server --abort-after-ms 1200 >$T/cg${i}_srv &
    fact cg${i}_srv_pid $!
    port=$(wait_for $T/cg${i}_srv listening)
    fact cg${i}_sport "$port"
    if [ $i = 0 ]; then
        # Created inside a descendant of the filtered cgroup.
        sh -c "echo \$\$ >/sys/fs/cgroup/rwmx/inner/cgroup.procs && exec $P client --port $port --hold-ms 5000 --name rw_cg_in" >$T/cg${i}_cli &
    else
        $P client --port "$port" --hold-ms 5000 --name rw_cg_out >$T/cg${i}_cli &
    fi
    fact cg${i}_cli_pid $!
    fact cg${i}_cport "$(wait_for $T/cg${i}_cli connected | cut -d" " -f1)"
done
fact cg0_result "$(wait_for $T/cg0_cli result)"
fact cg1_result "$(wait_for $T/cg1_cli result)"
sleep 0.3
stop_agent

# ---- enforce: keepalive turned on for the connections of one cgroup ----
# A connection made in the cgroup before enforcement (--existing), one made
# after, and one outside the cgroup; rw_ka_probe prints what getsockopt says.
mkdir -p /sys/fs/cgroup/rwenf
mkfifo $T/enf_pre.go
exec 6<>$T/enf_pre.go
sh -c "echo \$\$ >/sys/fs/cgroup/rwenf/cgroup.procs && exec rw_ka_probe --name rw_enf_pre --wait-line" <&6 >$T/enf_pre &
fact enf_pre_pid $!
fact enf_pre_sport "$(wait_for $T/enf_pre listening)"
fact enf_pre_cport "$(wait_for $T/enf_pre connected)"
wait_line $T/enf_pre waiting
rstwatch enforce --cgroup /rwenf --idle 30s --interval 5s --probes 3 --existing >$T/enforce.ndjson 2>$T/enforce.err &
enf=$!
fact enforce_pid $enf
i=0
while ! grep -q '"enforce_start"' $T/enforce.ndjson 2>/dev/null && kill -0 $enf 2>/dev/null && [ $i -lt 1200 ]; do
    sleep 0.1
    i=$((i + 1))
done
echo go >&6
fact enf_pre_client "$(wait_for $T/enf_pre client)"
if kill -0 $enf 2>/dev/null; then
    sh -c "echo \$\$ >/sys/fs/cgroup/rwenf/cgroup.procs && exec rw_ka_probe --name rw_enf_in" >$T/enf_in &
    fact enf_in_pid $!
    fact enf_in_sport "$(wait_for $T/enf_in listening)"
    fact enf_in_cport "$(wait_for $T/enf_in connected)"
    fact enf_in_client "$(wait_for $T/enf_in client)"
    fact enf_in_server "$(wait_for $T/enf_in server)"
    rw_ka_probe --name rw_enf_out >$T/enf_out &
    fact enf_out_pid $!
    fact enf_out_client "$(wait_for $T/enf_out client)"
    sleep 0.3
    kill -INT $enf
fi
wait_exit $enf
fact enforce_exit "$?"

# ---- no kernel config: libbpf cannot read CONFIG_HZ, rstwatch measures it ----
mv "/boot/config-$(uname -r)" $T/kconfig.hidden
timeout 120 rstwatch trace --duration 1s --events reset >$T/noconfig.ndjson 2>$T/noconfig.err
fact noconfig_rc $?
mv $T/kconfig.hidden "/boot/config-$(uname -r)"

# ---- verify: every program of every object loads or is left out with its
# reason (the checker compares the set with the build's objects) ----
t_verify=$(now_ms)
timeout 300 rstwatch verify >$T/verify.ndjson 2>$T/verify.err
fact verify_rc $?
fact verify_ms $(($(now_ms) - t_verify))

fact scenario_ms $(($(now_ms) - t0))
section trace $T/trace.ndjson
section trace.err $T/trace.ndjson.err
section audit $T/audit.ndjson
section audit.err $T/audit.err
section ka_events $T/ka_events.ndjson
section ka_events.err $T/ka_events.ndjson.err
section cgroup $T/cgroup.ndjson
section cgroup.err $T/cgroup.ndjson.err
section enforce $T/enforce.ndjson
section enforce.err $T/enforce.err
section noconfig $T/noconfig.ndjson
section noconfig.err $T/noconfig.err
section verify $T/verify.ndjson
section verify.err $T/verify.err
echo "@@RW-DONE"
sync
poweroff -f
