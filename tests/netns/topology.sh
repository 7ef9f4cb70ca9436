#!/usr/bin/env bash
# The netns suite's internet checks itself (docs/NETNS.md): what the homes
# can reach, what cannot reach them, what address the relay sees. If a rule
# of a router is wrong, this fails before any peer test is believed.
#
# Usage: topology.sh (as root). Exit 0 all ok, 1 a check failed, 77 cannot
# run here (the reason is printed).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

netns_require
netns_up

P=$RELAY_PORT # the relay's port: the relay-only home may reach it
Q=9000        # any other port

# Listeners everywhere a connection may be tried, so "refused" or "timeout"
# below comes from the network, never from a missing listener.
probe_serve relay :: $P
probe_serve relay :: $Q
probe_serve pub :: $P
probe_serve pub :: $Q
probe_serve a :: $Q
probe_serve b :: $Q

# expect NODE ADDR PORT WANT DESCRIPTION: WANT is "ok SEEN" or "blocked"
# (refused, timeout or unreachable).
expect() {
	local node=$1 addr=$2 port=$3 want=$4 desc=$5 got
	got=$(probe "$node" "$addr" "$port" 2>&1)
	case $want in
	blocked)
		case $got in
		refused | timeout | unreachable) ok "$desc ($got)" ;;
		*) not_ok "$desc" "expected no connection, got: $got" ;;
		esac
		;;
	*)
		if [ "$got" = "$want" ]; then ok "$desc"; else not_ok "$desc" "expected '$want', got: $got"; fi
		;;
	esac
}

echo "# positive controls: the listeners answer where nothing is in the way"
expect rtra "$A4" $Q "ok 192.0.2.1" "home A's router reaches home A's host (IPv4)"
expect rtra "$A6" $Q "ok 2001:db8:a::1" "home A's router reaches home A's host (IPv6)"
expect rtrb "$B6" $Q "ok 2001:db8:b::1" "home B's router reaches home B's host (IPv6)"
expect relay "$PUB4" $Q "ok $RELAY4" "the relay host reaches the public host (IPv4)"
expect relay "$PUB6" $Q "ok $RELAY6" "the relay host reaches the public host (IPv6)"

echo "# out of home A: works, through NAT for IPv4"
expect a "$RELAY4" $P "ok $RTRA4" "home A reaches the relay over IPv4; the relay sees router A's public address (NAT)"
expect a "$RELAY6" $P "ok $A6" "home A reaches the relay over IPv6 (its own address, no NAT)"
expect a "$PUB4" $Q "ok $RTRA4" "home A reaches the public host on any port (IPv4)"
expect a "$PUB6" $Q "ok $A6" "home A reaches the public host on any port (IPv6)"
expect b "$RELAY4" $P "ok $RTRB4" "home B reaches the relay over IPv4; the relay sees router B's public address"

echo "# into home A: no new connection, either family"
expect relay "$A6" $Q blocked "the relay host cannot open a connection to home A's host over IPv6 (firewall)"
expect relay "$RTRA4" $Q blocked "the relay host cannot open a connection to home A's public IPv4 address (no port forward)"
expect relay "$A4" $Q blocked "the relay host cannot reach home A's private IPv4 address (not routed)"
expect b "$A6" $Q blocked "home B cannot open a connection to home A's host over IPv6"
expect b "$RTRA4" $Q blocked "home B cannot open a connection to home A's public IPv4 address"
expect pub "$A6" $Q blocked "the public host cannot open a connection to home A over IPv6"
expect a "$B6" $Q blocked "home A cannot open a connection to home B's host over IPv6"

echo "# the relay-only home"
expect r "$RELAY4" $P "ok $RTRR4" "the relay-only home reaches the relay's port over IPv4 (NAT)"
expect r "$RELAY6" $P "ok $R6" "the relay-only home reaches the relay's port over IPv6"
expect r "$RELAY4" $Q blocked "the relay-only home cannot reach another port of the relay host (IPv4)"
expect r "$RELAY6" $Q blocked "the relay-only home cannot reach another port of the relay host (IPv6)"
expect r "$PUB4" $P blocked "the relay-only home cannot reach the public host, even on the relay's port (IPv4)"
expect r "$PUB6" $Q blocked "the relay-only home cannot reach the public host (IPv6)"

netns_finish
