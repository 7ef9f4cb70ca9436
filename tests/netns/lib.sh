# shellcheck shell=bash
# A small internet in network namespaces, for the netns suite (docs/NETNS.md).
#
# Sourced by the tests of tests/netns. Root only: netns_require skips the
# test (exit 77, with the reason) when it cannot create namespaces, veth
# pairs or nftables rules here; with TANDEM_NETNS_STRICT=1 (.ci/run) that
# is a failure instead.
#
#   netns_require        check root, ip, nft, namespaces (skips otherwise)
#   netns_up             build the internet below; torn down on exit (trap)
#   nsx NODE CMD...      run CMD in NODE's namespace
#   netns_bg NODE LOG CMD...   start CMD in the background there (stdout+stderr to LOG)
#   ok / not_ok / check  TAP-style result lines; netns_finish exits 0 or 1
#
# Only documentation addresses are used (RFC 5737, RFC 3849):
#
#   public internet 198.51.100.0/24 and 2001:db8:0::/48: one routed link
#   per host from "core" (the internet router), 198.51.100.16*i/28 and
#   2001:db8:0:i::/64, core .1 / ::1, the host .2 / ::2:
#     i=1 relay  198.51.100.18  2001:db8:0:1::2   the relay host
#     i=2 pub    198.51.100.34  2001:db8:0:2::2   a public host: no NAT, no firewall
#     i=3 rtra   198.51.100.50  2001:db8:0:3::2   home A's router (WAN side)
#     i=4 rtrb   198.51.100.66  2001:db8:0:4::2   home B's router
#     i=5 rtrr   198.51.100.82  2001:db8:0:5::2   the relay-only home's router
#   home LANs (192.0.2.0/24 in /26s; IPv6 a routed /64 each):
#     a  192.0.2.2    2001:db8:a::2  behind rtra (LAN side 192.0.2.1,   2001:db8:a::1)
#     b  192.0.2.66   2001:db8:b::2  behind rtrb (LAN side 192.0.2.65,  2001:db8:b::1)
#     r  192.0.2.130  2001:db8:c::2  behind rtrr (LAN side 192.0.2.129, 2001:db8:c::1)
#
# core routes the public links and the homes' IPv6 /64s, never the homes'
# IPv4 LANs (as on the real internet: private space is not routed). rtra
# and rtrb masquerade IPv4 to their WAN address and drop every new
# connection from outside, IPv4 and IPv6 (stateful: established and related
# traffic passes). rtrr does the same and lets its LAN open only TCP
# connections to the relay (198.51.100.18 and 2001:db8:0:1::2, port 8480).
# netns_up_symmetric adds a fourth home whose router is a symmetric NAT
# (masquerade random: a new random public port for every connection):
#     i=6 rtrs   198.51.100.98  2001:db8:0:6::2   its router
#     s  192.0.2.194  2001:db8:d::2  behind rtrs (LAN side 192.0.2.193, 2001:db8:d::1)
# 203.0.113.0/24 is left for later topologies.

NETNS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NETNS_PY=${PYTHON:-python3}

RELAY_PORT=8480
RELAY4=198.51.100.18
RELAY6=2001:db8:0:1::2
PUB4=198.51.100.34
PUB6=2001:db8:0:2::2
RTRA4=198.51.100.50
RTRA6=2001:db8:0:3::2
RTRB4=198.51.100.66
RTRB6=2001:db8:0:4::2
RTRR4=198.51.100.82
RTRR6=2001:db8:0:5::2
A4=192.0.2.2
A6=2001:db8:a::2
B4=192.0.2.66
B6=2001:db8:b::2
R4=192.0.2.130
R6=2001:db8:c::2
RTRS4=198.51.100.98
RTRS6=2001:db8:0:6::2
S4=192.0.2.194
S6=2001:db8:d::2

# The public address (IPv4, IPv6) a node shows to the internet.
public4() {
	case $1 in
	relay) echo $RELAY4 ;; pub) echo $PUB4 ;;
	a | rtra) echo $RTRA4 ;; b | rtrb) echo $RTRB4 ;; r | rtrr) echo $RTRR4 ;;
	s | rtrs) echo $RTRS4 ;;
	esac
}
public6() {
	case $1 in
	relay) echo $RELAY6 ;; pub) echo $PUB6 ;;
	a) echo $A6 ;; b) echo $B6 ;; r) echo $R6 ;; s) echo $S6 ;;
	rtra) echo $RTRA6 ;; rtrb) echo $RTRB6 ;; rtrr) echo $RTRR6 ;; rtrs) echo $RTRS6 ;;
	esac
}

# Namespaces are named tnt<PID>-<node>: unique per run, so tests run in
# parallel; the PID lets a later run clear what a killed run left.
NETNS_ID="tnt$$"
NETNS_NODES="core relay pub rtra a rtrb b rtrr r rtrs s"
NETNS_CREATED=""
NETNS_TMP=""

ns() { echo "$NETNS_ID-$1"; }
nsx() {
	local node=$1
	shift
	ip netns exec "$(ns "$node")" "$@"
}

netns_skip() {
	if [ "${TANDEM_NETNS_STRICT:-0}" = 1 ]; then
		echo "not ok - the netns suite cannot run here: $1 (TANDEM_NETNS_STRICT=1: that is a failure)"
		exit 1
	fi
	echo "SKIP: $1"
	exit 77
}

# Kill what runs in a namespace (processes this harness started there),
# then delete it.
netns_del() {
	local name=$1 pids p i
	pids=$(ip netns pids "$name" 2>/dev/null)
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086
		kill -TERM $pids 2>/dev/null
		for i in $(seq 1 30); do
			pids=$(ip netns pids "$name" 2>/dev/null)
			[ -z "$pids" ] && break
			sleep 0.1
		done
		for p in $pids; do
			kill -KILL "$p" 2>/dev/null
		done
	fi
	ip netns del "$name" 2>/dev/null
}

netns_cleanup() {
	local name
	for name in $NETNS_CREATED; do
		netns_del "$name"
	done
	NETNS_CREATED=""
	# anything else of ours (a node created after a failed step)
	for name in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$NETNS_ID-"); do
		netns_del "$name"
	done
	if [ -n "$NETNS_TMP" ] && [ -d "$NETNS_TMP" ]; then
		rm -rf "$NETNS_TMP"
	fi
}

# Namespaces (and temporary directories) left by a run that was killed
# (SIGKILL skips the trap): their creator's pid is gone.
netns_sweep_stale() {
	local name pid
	for name in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^tnt[0-9]+-'); do
		pid=${name#tnt}
		pid=${pid%%-*}
		if ! kill -0 "$pid" 2>/dev/null; then
			netns_del "$name"
		fi
	done
	local d
	for d in "${TMPDIR:-/tmp}"/tandem-netns.tnt[0-9]*.*; do
		[ -d "$d" ] || continue
		pid=${d##*/tandem-netns.tnt}
		pid=${pid%%.*}
		kill -0 "$pid" 2>/dev/null || rm -rf "$d"
	done
}

netns_detached_sweep() {
	setsid -f bash "$NETNS_DIR/sweep.sh" --id "$NETNS_ID" "$NETNS_TMP" </dev/null >/dev/null 2>&1
}

netns_require() {
	[ "$(id -u)" = 0 ] || netns_skip "needs root (network namespaces, veth, nftables)"
	command -v ip >/dev/null 2>&1 || netns_skip "no 'ip' (install iproute2: scripts/install-deps.sh)"
	command -v nft >/dev/null 2>&1 || netns_skip "no 'nft' (install nftables: scripts/install-deps.sh)"
	command -v "$NETNS_PY" >/dev/null 2>&1 || netns_skip "no python3"
	trap netns_cleanup EXIT
	trap 'exit 130' INT
	# meson's timeout sends SIGTERM and SIGKILL 0.5 s later: a detached
	# sweep finishes the cleanup even if this shell is killed meanwhile
	trap 'netns_detached_sweep; exit 143' TERM
	netns_sweep_stale
	local p1 p2 err
	p1=$(ns probe1)
	p2=$(ns probe2)
	NETNS_CREATED="$p1 $p2"
	if ! err=$(ip netns add "$p1" 2>&1); then
		netns_skip "cannot create a network namespace: $err"
	fi
	if ! err=$(ip netns add "$p2" 2>&1); then
		netns_skip "cannot create a network namespace: $err"
	fi
	if ! err=$(ip -n "$p1" link add x type veth peer name y netns "$p2" 2>&1); then
		netns_skip "cannot create a veth pair: $err"
	fi
	if ! err=$(printf 'table ip t {\n chain c { type nat hook postrouting priority 100; masquerade; }\n}\n' |
		ip netns exec "$p1" nft -f - 2>&1); then
		netns_skip "nftables unusable in a namespace: $err"
	fi
	netns_del "$p1"
	netns_del "$p2"
	NETNS_CREATED=""
	NETNS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tandem-netns.$NETNS_ID.XXXXXX") || exit 1
	# Never a proxy: everything goes straight to the documentation
	# addresses of this internet.
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
	export no_proxy='*' NO_PROXY='*'
}

# A setup step that must work (after netns_require said the machine can).
netns_run() {
	local err
	if ! err=$("$@" 2>&1); then
		echo "not ok - setting up the namespaces: '$*' failed: $err"
		exit 1
	fi
}

netns_node() {
	netns_run ip netns add "$(ns "$1")"
	NETNS_CREATED="$NETNS_CREATED $(ns "$1")"
	netns_run ip -n "$(ns "$1")" link set lo up
}

netns_forwarding() {
	netns_run nsx "$1" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward && echo 1 >/proc/sys/net/ipv6/conf/all/forwarding'
}

# netns_link NODE1 IF1 NODE2 IF2: a veth pair between two namespaces
netns_link() {
	netns_run ip -n "$(ns "$1")" link add "$2" type veth peer name "$4" netns "$(ns "$3")"
	netns_run ip -n "$(ns "$1")" link set "$2" up
	netns_run ip -n "$(ns "$3")" link set "$4" up
}

# netns_addr NODE IF ADDR/LEN...: addresses without duplicate address
# detection (they are usable at once)
netns_addr() {
	local node=$1 dev=$2 a
	shift 2
	for a in "$@"; do
		case $a in
		*:*) netns_run ip -n "$(ns "$node")" addr add "$a" dev "$dev" nodad ;;
		*) netns_run ip -n "$(ns "$node")" addr add "$a" dev "$dev" ;;
		esac
	done
}

netns_default() { # NODE GW4 GW6
	netns_run ip -n "$(ns "$1")" route add default via "$2"
	netns_run ip -n "$(ns "$1")" -6 route add default via "$3"
}

# A public host on link i of core.
netns_public_host() { # NODE I COREIF
	local node=$1 i=$2 cif=$3
	netns_node "$node"
	netns_link core "$cif" "$node" eth0
	netns_addr core "$cif" "198.51.100.$((16 * i + 1))/28" "2001:db8:0:$i::1/64"
	netns_addr "$node" eth0 "198.51.100.$((16 * i + 2))/28" "2001:db8:0:$i::2/64"
	netns_default "$node" "198.51.100.$((16 * i + 1))" "2001:db8:0:$i::1"
}

# The firewall of a home router: IPv4 masquerade on wan; no new connection
# in from wan, neither to the router nor through it, in either family.
# ALLOW (nft rules) replaces "the LAN may open anything" in forward; NAT
# ("random" for a symmetric NAT) is added to the masquerade rule.
netns_router_fw() { # NODE [ALLOW-RULES [NAT-FLAGS]]
	local allow=${2:-'iifname "lan" oifname "wan" accept'} natflags=${3:-}
	netns_run nsx "$1" nft -f - <<EOF
table inet home_fw {
	chain input {
		type filter hook input priority 0; policy drop;
		iif "lo" accept
		ct state established,related accept
		iifname "lan" accept
		meta l4proto { icmp, ipv6-icmp } accept
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		$allow
	}
}
table ip home_nat {
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		oifname "wan" masquerade $natflags
	}
}
EOF
}

# A home: router on link i of core, LAN N (192.0.2.64*n/26, 2001:db8:X::/64).
netns_home() { # HOST ROUTER I N X COREIF [ALLOW-RULES [NAT-FLAGS]]
	local host=$1 rtr=$2 i=$3 n=$4 x=$5 cif=$6
	netns_node "$rtr"
	netns_node "$host"
	netns_forwarding "$rtr"
	netns_link core "$cif" "$rtr" wan
	netns_addr core "$cif" "198.51.100.$((16 * i + 1))/28" "2001:db8:0:$i::1/64"
	netns_addr "$rtr" wan "198.51.100.$((16 * i + 2))/28" "2001:db8:0:$i::2/64"
	netns_default "$rtr" "198.51.100.$((16 * i + 1))" "2001:db8:0:$i::1"
	netns_link "$rtr" lan "$host" eth0
	netns_addr "$rtr" lan "192.0.2.$((64 * n + 1))/26" "2001:db8:$x::1/64"
	netns_addr "$host" eth0 "192.0.2.$((64 * n + 2))/26" "2001:db8:$x::2/64"
	netns_default "$host" "192.0.2.$((64 * n + 1))" "2001:db8:$x::1"
	# the internet routes the home's IPv6 /64 to its router, never its IPv4 LAN
	netns_run ip -n "$(ns core)" -6 route add "2001:db8:$x::/64" via "2001:db8:0:$i::2"
	netns_router_fw "$rtr" "${7:-}" "${8:-}"
}

netns_up() {
	netns_node core
	netns_forwarding core
	netns_public_host relay 1 relay
	netns_public_host pub 2 pub
	netns_home a rtra 3 0 a rtra
	netns_home b rtrb 4 1 b rtrb
	netns_home r rtrr 5 2 c rtrr \
		"iifname \"lan\" oifname \"wan\" ip daddr $RELAY4 tcp dport $RELAY_PORT accept
		iifname \"lan\" oifname \"wan\" ip6 daddr $RELAY6 tcp dport $RELAY_PORT accept"
}

# The symmetric-NAT home (after netns_up): like home A, but its router
# maps every new connection to a random public port, whatever the local
# port (nft "masquerade random"), as a symmetric NAT does.
netns_up_symmetric() {
	netns_home s rtrs 6 3 d rtrs "" random
}

# netns_bg NODE LOG CMD...: CMD in NODE's namespace, in the background
# (killed at cleanup with everything else in the namespace).
netns_bg() {
	local node=$1 log=$2
	shift 2
	ip netns exec "$(ns "$node")" "$@" >"$log" 2>&1 &
	NETNS_LAST_PID=$!
}

# wait_for SECONDS CMD...: true once CMD succeeds, false after SECONDS.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while :; do
		"$@" && return 0
		[ $SECONDS -ge $end ] && return 1
		sleep 0.2
	done
}

# probe_serve NODE ADDR PORT: a probe server; waits until it listens.
probe_serve() {
	local log
	log="$NETNS_TMP/serve-$1-$3.log"
	netns_bg "$1" "$log" "$NETNS_PY" "$NETNS_DIR/probe.py" serve "$2" "$3"
	if ! wait_for 10 grep -qs '^ready$' "$log"; then
		echo "not ok - the probe server in $1 on $2 port $3 did not start:"
		sed 's/^/#   /' "$log"
		exit 1
	fi
}

# probe NODE ADDR PORT: prints the probe's line (ok SEEN, refused, timeout,
# unreachable); a blocked connection costs at most 3 s.
probe() {
	nsx "$1" "$NETNS_PY" "$NETNS_DIR/probe.py" connect "$2" "$3" 3
}

# TAP-style results; the exit status decides (0: all ok).
NETNS_N=0
NETNS_FAILED=0
ok() {
	NETNS_N=$((NETNS_N + 1))
	echo "ok $NETNS_N - $1"
}
not_ok() {
	NETNS_N=$((NETNS_N + 1))
	NETNS_FAILED=$((NETNS_FAILED + 1))
	echo "not ok $NETNS_N - $1"
	shift
	local f
	for f in "$@"; do
		if [ -f "$f" ]; then
			echo "#   --- $f"
			tail -n 40 "$f" | sed 's/^/#   /'
		else
			echo "#   $f"
		fi
	done
}
check() { # check DESCRIPTION STATUS [FILES OR NOTES TO SHOW ON FAILURE]
	local d=$1 st=$2
	shift 2
	if [ "$st" = 0 ]; then ok "$d"; else not_ok "$d" "$@"; fi
}
netns_finish() {
	echo "1..$NETNS_N"
	if [ "$NETNS_FAILED" -ne 0 ]; then
		echo "# $NETNS_FAILED of $NETNS_N failed"
		exit 1
	fi
	exit 0
}
