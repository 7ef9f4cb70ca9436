#!/usr/bin/env bash
# Hole punching at the probe level (docs/NETNS.md, issue 12 point 3): what
# the relay's X-Tandem-Observed header says behind each kind of NAT, and
# whether a TCP simultaneous open between two homes gets through, the way
# the daemon tries it (from the port the relay observed, at an agreed
# moment, retrying for a few seconds).
#
#   home A and home B (Linux masquerade: keeps the source port when it is
#   free, so one local port shows as the same public port to everyone;
#   stateful firewalls drop new inbound): the punch connects.
#   home S (symmetric NAT, masquerade random: a new public port for every
#   connection): the observed port is of no use, and the punch gives up
#   when its window ends.
#
# Usage: punch.sh TANDEM_RELAY (as root). Exit 0 all ok, 1 a check failed,
# 77 cannot run here.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

RELAY_BIN=${1:?usage: punch.sh TANDEM_RELAY}
[ -x "$RELAY_BIN" ] || {
	echo "punch.sh: $RELAY_BIN is not an executable (build first)" >&2
	exit 1
}
RELAY_BIN=$(realpath "$RELAY_BIN")
WINDOW=6 # seconds, as PUNCH_WINDOW_MS

netns_require
netns_up
netns_up_symmetric
T=$NETNS_TMP

netns_bg relay "$T/relay.log" "$RELAY_BIN" --listen "[::]:$RELAY_PORT"
if ! wait_for 20 grep -qs '^listening on ' "$T/relay.log"; then
	not_ok "tandem-relay starts on the relay host" "$T/relay.log"
	netns_finish
fi

observe() { # observe NODE LPORT: what the relay sees of NODE's LPORT
	nsx "$1" "$NETNS_PY" "$NETNS_DIR/probe.py" observe "$2" "$RELAY4" "$RELAY_PORT"
}

echo "# what the relay sees (X-Tandem-Observed), twice from one local port"
PA=40001 PB=40002 PS=40003
oa1=$(observe a $PA)
oa2=$(observe a $PA)
[ "$oa1" = "$RTRA4:$PA" ] && [ "$oa2" = "$oa1" ]
check "home A's port $PA shows as $RTRA4:$PA, the same each time (port-preserving NAT): $oa1, $oa2" $?
ob=$(observe b $PB)
[ "$ob" = "$RTRB4:$PB" ]
check "home B's port $PB shows as $RTRB4:$PB: $ob" $?
op=$(observe pub 40004)
[ "$op" = "$PUB4:40004" ]
check "the public host's port shows as itself: $op" $?
os1=$(observe s $PS)
os2=$(observe s $PS)
os3=$(observe s $PS)
case $os1 in "$RTRS4":*) r=0 ;; *) r=1 ;; esac
[ $r = 0 ] && { [ "$os1" != "$os2" ] || [ "$os2" != "$os3" ]; }
check "the symmetric home's port $PS shows on another public port each time: $os1, $os2, $os3" $?

# punch NODE-X LPORT-X TARGET-X NODE-Y LPORT-Y TARGET-Y: both at once
punch_pair() {
	local at
	at=$(($(date +%s) + 2))
	PROBE_NAME=$1 netns_bg "$1" "$T/punch-$1.out" "$NETNS_PY" "$NETNS_DIR/probe.py" punch "$2" \
		"${3%:*}" "${3##*:}" $WINDOW "$at"
	local px=$NETNS_LAST_PID
	PROBE_NAME=$4 netns_bg "$4" "$T/punch-$4.out" "$NETNS_PY" "$NETNS_DIR/probe.py" punch "$5" \
		"${6%:*}" "${6##*:}" $WINDOW "$at"
	local py=$NETNS_LAST_PID
	wait "$px" "$py"
}

echo "# a TCP simultaneous open between home A and home B, at the same moment"
punch_pair a $PA "$ob" b $PB "$oa1"
ra=$(cat "$T/punch-a.out")
rb=$(cat "$T/punch-b.out")
case "$ra $rb" in "ok b "*" ok a "*) r=0 ;; *) r=1 ;; esac
check "A and B connect through both NATs and firewalls ('$ra', '$rb')" $r
echo "# the same with clocks 1.5 s apart (B starts later; A's SYNs are retried meanwhile)"
at=$(($(date +%s) + 2))
PROBE_NAME=a netns_bg a "$T/punch-a2.out" "$NETNS_PY" "$NETNS_DIR/probe.py" punch $PA \
	"$RTRB4" $PB $WINDOW "$at"
pa=$NETNS_LAST_PID
PROBE_NAME=b netns_bg b "$T/punch-b2.out" "$NETNS_PY" "$NETNS_DIR/probe.py" punch $PB \
	"$RTRA4" $PA $WINDOW "$((at + 1)).5"
pb=$NETNS_LAST_PID
sleep 1
wait "$pa" "$pb"
ra=$(cat "$T/punch-a2.out")
rb=$(cat "$T/punch-b2.out")
case "$ra $rb" in "ok b "*" ok a "*) r=0 ;; *) r=1 ;; esac
check "A and B connect with B 1.5 s late ('$ra', '$rb')" $r

echo "# one side alone: no connection (the firewalls work), given up after the window"
PROBE_NAME=a nsx a "$NETNS_PY" "$NETNS_DIR/probe.py" punch 40011 "$RTRB4" 40012 $WINDOW 0 >"$T/alone.out"
r=$?
read -r word secs _ <"$T/alone.out"
[ $r = 2 ] && [ "$word" = timeout ]
check "A punching alone towards B gets no connection: $(cat "$T/alone.out")" $?

echo "# the symmetric home: the punch cannot work, and costs only its window"
punch_pair a 40021 "$os3" s 40023 "$RTRA4:40021"
ra=$(cat "$T/punch-a.out")
rs=$(cat "$T/punch-s.out")
case "$ra $rs" in timeout*" "timeout*) r=0 ;; *) r=1 ;; esac
check "A and the symmetric home do not connect ('$ra', '$rs')" $r
read -r word secs _ <"$T/punch-s.out"
awk -v s="$secs" -v w=$WINDOW 'BEGIN { exit !(s + 0 <= w + 1) }'
check "the failed punch gave up after ${secs}s (window ${WINDOW}s)" $?

netns_finish
