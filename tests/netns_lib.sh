# Two namespace "nodes" on one machine, for multi-node tests (sourced by tests/t_*.sh; POSIX sh).
#
#   . tests/netns_lib.sh
#   NN_PREFIX=cgm NN_NET=10.77 netns_up /var/tmp/run-dir || { skip ... "$NN_WHY"; }
#   nn_exec 1 hostname                # runs in node 1: prints cgm-n1
#   mpirun --mca plm_rsh_agent "$NN_AGENT" --host cgm-n1,cgm-n2 ...   # launched from node 1
#   netns_down                        # also run by the caller's EXIT trap
#
# Each node is a network namespace ${NN_PREFIX}-n1 / -n2 plus a holder process (sleep) that owns
# a UTS namespace (hostname = the node's name) and a mount namespace with a private tmpfs on
# /tmp and its own /etc/hosts naming both nodes. Everything run "on a node" enters all three, so
# Open MPI sees two hosts: separate session directories, no shared memory between them, TCP
# between them. The run directory given to netns_up, and everything outside /tmp, is shared
# (as a cluster's shared filesystem would be); it must not lie under /tmp. A working directory
# under /tmp (a clone there) is bound back over the nodes' tmpfs, so it stays shared too.
#
# Network (addresses only inside the namespaces; the host's interfaces and routes are untouched):
#   ${NN_PREFIX}0        veth pair between the nodes, $NN_NET.0.1/24 and $NN_NET.0.2/24
#   ${NN_PREFIX}mgmt     a second veth pair, $NN_NET.2.1/24 and $NN_NET.2.2/24: a management network
#                        for Open MPI's out-of-band channel (oob_tcp_if_include), as clusters
#                        keep one beside the data network; the host names resolve to it.
#   ${NN_PREFIX}decoy    an interface in each node, $NN_NET.1.1/24 and $NN_NET.1.2/24: the same
#                        subnet on both, so Open MPI takes it for a route between the nodes, but
#                        it leads nowhere (no neighbour answers). Only a correct if_include works.
# NN_IF is the data interface's name (the same in both nodes), NN_MGMT the management one's,
# NN_DECOY the decoy's.
# NN_AGENT is an rsh agent for Open MPI's plm_rsh_agent: `agent HOST CMD...` runs CMD on HOST
# through `ip netns exec` and nsenter into the node's holder.
# Names stay short: Linux allows 15 characters for an interface.

NN_PREFIX=${NN_PREFIX:-cgm}
NN_NET=${NN_NET:-10.77}
NN_IF=${NN_PREFIX}0
NN_DECOY=${NN_PREFIX}decoy
NN_MGMT=${NN_PREFIX}mgmt
NN_WHY=""
NN_DIR=""
NN_AGENT=""

nn_name() { echo "$NN_PREFIX-n$1"; }

# Why namespaces cannot be used here (empty when they can): root, ip netns, unshare, nsenter.
netns_why() {
    [ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; return; }
    for c in ip unshare nsenter; do
        command -v $c >/dev/null || { echo "$c is not installed"; return; }
    done
    ip netns list >/dev/null 2>&1 || { echo "'ip netns' does not work here"; return; }
    echo ""
}

# nn_exec N CMD...: run CMD in node N (its network, hostname and /tmp). exec-chains, so the
# caller's $! is CMD's own pid.
nn_exec() {
    _n=$1; shift
    exec_pid=$(cat "$NN_DIR/holder$_n.pid" 2>/dev/null)
    [ -n "$exec_pid" ] || { echo "netns_lib: node $_n is not up" >&2; return 1; }
    ip netns exec "$(nn_name "$_n")" nsenter -t "$exec_pid" -u -m -- "$@"
}

# nn_spawn N CMD...: nn_exec that replaces the calling shell. In the background
# (`nn_spawn 1 mpirun ... &`, a subshell) $! is then CMD's own pid, to signal it.
nn_spawn() {
    _n=$1; shift
    exec ip netns exec "$(nn_name "$_n")" nsenter -t "$(cat "$NN_DIR/holder$_n.pid")" -u -m -- "$@"
}

# netns_up SHARED_DIR: create both nodes; 0 when up, else 1 with the reason in NN_WHY (and
# whatever was made already removed).
netns_up() {
    # names from the prefix as it is now (a caller may set NN_PREFIX after sourcing this)
    NN_IF=${NN_PREFIX}0; NN_DECOY=${NN_PREFIX}decoy; NN_MGMT=${NN_PREFIX}mgmt
    NN_WHY=$(netns_why)
    [ -z "$NN_WHY" ] || return 1
    case "$1" in /tmp/*|/tmp) NN_WHY="the shared directory '$1' is under /tmp, which each node \
hides behind its own tmpfs"; return 1 ;; esac
    NN_DIR=$1/.netns
    mkdir -p "$NN_DIR" || { NN_WHY="cannot create $NN_DIR"; return 1; }
    netns_down_quiet
    _a=$(nn_name 1); _b=$(nn_name 2)
    printf '127.0.0.1 localhost\n%s.2.1 %s\n%s.2.2 %s\n' "$NN_NET" "$_a" "$NN_NET" "$_b" \
        >"$NN_DIR/hosts"
    if ! nn_make_net >"$NN_DIR/setup.log" 2>&1; then
        NN_WHY="network set-up failed: $(tail -n 2 "$NN_DIR/setup.log" | tr '\n' ' ')"
        netns_down; return 1
    fi
    # The checkout itself (cigl, jobs/, tests/) must stay visible on the nodes: a clone under
    # /tmp would vanish behind their tmpfs, so it is bound back over it at the same path.
    _keep=""
    case "$(pwd)" in /tmp/*) _keep=$(pwd); mkdir -p "$NN_DIR/keep" ;; esac
    for n in 1 2; do
        # the holder: own hostname, private /tmp and /etc/hosts; it writes its pid when ready
        ip netns exec "$(nn_name $n)" unshare -u -m --propagation private sh -c '
            hostname "$1" &&
            { [ -z "$4" ] || mount --bind "$4" "$2/keep"; } &&
            mount -t tmpfs -o size=256m cgm-tmp /tmp &&
            { [ -z "$4" ] || { mkdir -p "$4" && mount --move "$2/keep" "$4"; }; } &&
            mount --bind "$2/hosts" /etc/hosts && echo $$ >"$2/holder$3.pid.new" &&
            mv "$2/holder$3.pid.new" "$2/holder$3.pid" && exec sleep 100000' \
            sh "$(nn_name $n)" "$NN_DIR" $n "$_keep" >>"$NN_DIR/setup.log" 2>&1 &
        # out of the job table: bash would report the holder's kill at teardown ("Killed")
        # after the test's summary line, which must stay last
        disown $! 2>/dev/null || true
    done
    for i in $(seq 50); do
        [ -f "$NN_DIR/holder1.pid" ] && [ -f "$NN_DIR/holder2.pid" ] && break; sleep 0.1
    done
    if [ ! -f "$NN_DIR/holder1.pid" ] || [ ! -f "$NN_DIR/holder2.pid" ]; then
        NN_WHY="node holders did not start: $(tail -n 2 "$NN_DIR/setup.log" | tr '\n' ' ')"
        netns_down; return 1
    fi
    NN_AGENT=$NN_DIR/rsh-agent
    cat >"$NN_AGENT" <<EOF
#!/bin/sh
# rsh agent for Open MPI (plm_rsh_agent): HOST CMD... runs CMD on the namespace node HOST.
host=\$1; shift
[ "\$host" = "-x" ] && { host=\$1; shift; }
case "\$host" in
    $_a) n=1 ;;
    $_b) n=2 ;;
    *) echo "rsh-agent: unknown host '\$host'" >&2; exit 255 ;;
esac
exec ip netns exec "\$host" nsenter -t "\$(cat $NN_DIR/holder\$n.pid)" -u -m -- sh -c "\$*"
EOF
    chmod 755 "$NN_AGENT"
    [ "$(nn_exec 2 hostname)" = "$_b" ] &&
        nn_exec 1 ip route get "$NN_NET.0.2" | grep -q "dev $NN_IF" ||
        { NN_WHY="the nodes do not work: hostname '$(nn_exec 2 hostname)', no route"
          netns_down; return 1; }
    return 0
}

nn_make_net() { # (commands chained: set -e does not act inside `if`)
    ip netns add "$_a" && ip netns add "$_b" &&
        ip link add "$NN_PREFIX-va" type veth peer name "$NN_PREFIX-vb" &&
        ip link set "$NN_PREFIX-va" netns "$_a" && ip link set "$NN_PREFIX-vb" netns "$_b" &&
        ip link add "$NN_PREFIX-ma" type veth peer name "$NN_PREFIX-mb" &&
        ip link set "$NN_PREFIX-ma" netns "$_a" && ip link set "$NN_PREFIX-mb" netns "$_b" ||
        return 1
    for n in 1 2; do
        ns=$(nn_name $n); v=$NN_PREFIX-va; m=$NN_PREFIX-ma
        [ $n = 2 ] && { v=$NN_PREFIX-vb; m=$NN_PREFIX-mb; }
        ip -n "$ns" link set "$m" name "$NN_MGMT" &&
            ip -n "$ns" addr add "$NN_NET.2.$n/24" dev "$NN_MGMT" &&
            ip -n "$ns" link set "$NN_MGMT" up || return 1
        ip -n "$ns" link set "$v" name "$NN_IF" &&
            ip -n "$ns" addr add "$NN_NET.0.$n/24" dev "$NN_IF" &&
            ip -n "$ns" link set "$NN_IF" up && ip -n "$ns" link set lo up || return 1
        # (a veth whose peer stays in the node without an address: the dummy driver may be
        # missing, and no neighbour answers either way)
        ip -n "$ns" link add "$NN_DECOY" type veth peer name "${NN_DECOY}p" &&
            ip -n "$ns" link set "${NN_DECOY}p" up &&
            ip -n "$ns" addr add "$NN_NET.1.$n/24" dev "$NN_DECOY" &&
            ip -n "$ns" link set "$NN_DECOY" up || return 1
    done
}

# Every process still in a node: pids (holders, ranks, orted).
nn_pids() { ip netns pids "$(nn_name "$1")" 2>/dev/null; }

# nn_link up|down [IF]: take the data link (or IF) between the nodes up or down (both ends).
nn_link() {
    ip -n "$(nn_name 1)" link set "${2:-$NN_IF}" "$1" &&
        ip -n "$(nn_name 2)" link set "${2:-$NN_IF}" "$1"
}

netns_down_quiet() {
    for n in 1 2; do
        ns=$(nn_name $n)
        ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
        # everything started in the node ends with it (SIGKILL: a hung rank ignores TERM)
        for p in $(nn_pids $n); do kill -KILL "$p" 2>/dev/null; done
        ip netns delete "$ns" 2>/dev/null
    done
    # the veth's host-side name exists only while a set-up is half done
    ip link delete "$NN_PREFIX-va" 2>/dev/null
    ip link delete "$NN_PREFIX-vb" 2>/dev/null
    ip link delete "$NN_PREFIX-ma" 2>/dev/null
    ip link delete "$NN_PREFIX-mb" 2>/dev/null
    [ -n "$NN_DIR" ] && rm -f "$NN_DIR"/holder*.pid
    return 0
}

# Remove both nodes and their interfaces; safe to call twice and after a failed netns_up.
netns_down() {
    netns_down_quiet
    for n in 1 2; do
        if ip netns list 2>/dev/null | grep -q "^$(nn_name $n)\b"; then
            echo "netns_lib: $(nn_name $n) still exists after teardown" >&2
        fi
    done
}
