#!/usr/bin/env bash
# Two real tandem daemons in two places of the netns internet
# (docs/NETNS.md), the real tandem-relay on the relay host: both pair, a
# tree syncs both ways and verifies, status shows the connection and its
# path, and the relay's log and memory hold none of the files' plaintext.
#
# Usage: pair.sh TANDEM TANDEM_RELAY PAIRING (as root), PAIRING one of
#   pub-a   a public host and home A (NAT, IPv6 firewall): works today, the
#           home dials out
#   pub-a4  the same, home A without IPv6 (IPv4 through NAT only)
#   a-b     home A and home B, both behind NAT: needs relayed connections
#           (issue 12 points 1+2) or hole punching (point 3)
#   a-b-punch  the same, and the path must be direct: a hole punch (point 3)
#   s-a     the symmetric-NAT home and home A: the punch cannot work (both
#           logs show it given up), so relayed only
#   r-pub   the relay-only home and the public host: relayed only
#   r-a     the relay-only home and home A: relayed only
#   pub-a-always  pub-a with 'tandem up --relay-data always' on both sides:
#           relayed although a direct path exists (issue 12 point 2)
# Exit 0 all ok, 1 a check failed, 77 cannot run here (reason printed).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

TANDEM=${1:?usage: pair.sh TANDEM TANDEM_RELAY PAIRING}
RELAY_BIN=${2:?usage: pair.sh TANDEM TANDEM_RELAY PAIRING}
PAIRING=${3:?usage: pair.sh TANDEM TANDEM_RELAY PAIRING}
for b in "$TANDEM" "$RELAY_BIN"; do
	if [ ! -x "$b" ]; then
		echo "pair.sh: $b is not an executable (build first: meson compile -C build)" >&2
		exit 1
	fi
done
TANDEM=$(realpath "$TANDEM")
RELAY_BIN=$(realpath "$RELAY_BIN")

# the two nodes, whether a side has IPv6, and the path status must show
NO6=""
UP_ARGS=()
PUNCH=""
SYMMETRIC=""
case $PAIRING in
pub-a) X=pub Y=a WANT_PATH=direct ;;
pub-a4) X=pub Y=a NO6=a WANT_PATH=direct ;;
a-b) X=a Y=b WANT_PATH="direct|relayed" ;; # direct once a punch works (point 3)
a-b-punch) X=a Y=b WANT_PATH=direct PUNCH=works ;;
s-a) X=s Y=a WANT_PATH=relayed PUNCH=fails SYMMETRIC=1 ;;
r-pub) X=r Y=pub WANT_PATH=relayed ;;
r-a) X=r Y=a WANT_PATH=relayed ;;
pub-a-always) X=pub Y=a WANT_PATH=relayed UP_ARGS=(--relay-data always) ;;
*)
	echo "pair.sh: unknown pairing '$PAIRING' (pub-a, pub-a4, a-b, a-b-punch, s-a, r-pub, r-a, pub-a-always)" >&2
	exit 2
	;;
esac

# How long a step may take at most (a bound, not a measurement: the
# machine may be loaded; connecting takes seconds, syncing a few MiB less).
CONNECT_S=${TANDEM_NETNS_CONNECT_S:-120}
SYNC_S=${TANDEM_NETNS_SYNC_S:-180}

netns_require
netns_up
[ -n "$SYMMETRIC" ] && netns_up_symmetric
if [ -n "$NO6" ]; then
	netns_run nsx "$NO6" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6'
fi

T=$NETNS_TMP
RELAY_URL="http://$RELAY4:$RELAY_PORT"
# Plaintext that is in the files and must never reach the relay.
MARK="tandem-netns-plaintext-$$-$RANDOM$RANDOM"

# --- the relay
netns_bg relay "$T/relay.log" "$RELAY_BIN" --listen "[::]:$RELAY_PORT" --log-level debug
RELAY_PID=$NETNS_LAST_PID
if ! wait_for 20 grep -qs '^listening on ' "$T/relay.log"; then
	not_ok "tandem-relay starts on the relay host" "$T/relay.log"
	netns_finish
fi
ok "tandem-relay listens on the relay host ($RELAY_URL)"

# --- the peers
tdm() { # tdm NODE ARGS...: tandem with NODE's home, in NODE's namespace
	local node=$1
	shift
	nsx "$node" "$TANDEM" --home "$T/$node/home" "$@"
}
for n in $X $Y; do
	mkdir -p "$T/$n/share"
	tdm "$n" init >"$T/$n/init.out" 2>&1 || {
		not_ok "tandem init on $n" "$T/$n/init.out"
		netns_finish
	}
done
FPX=$(tdm $X id)
FPY=$(tdm $Y id)

# Each side's own tree: nested directories, small files and a 3 MiB file,
# all holding the marker.
mktree() { # mktree DIR NAME
	local d=$1/from-$2
	mkdir -p "$d/sub/deeper"
	printf '%s: a small file of %s\n' "$MARK" "$2" >"$d/small.txt"
	printf '%s: nested\n' "$MARK" >"$d/sub/deeper/nested.txt"
	: >"$d/empty"
	{
		for i in $(seq 1 20000); do printf '%s %s line %d\n' "$MARK" "$2" "$i"; done
		head -c 2097152 /dev/urandom
	} >"$d/big.bin"
}
mktree "$T/$X/share" "$X"
mktree "$T/$Y/share" "$Y"

up() { # up NODE PEER-FP
	tdm "$1" up --peer "$2" --relay "$RELAY_URL" --dir "$T/$1/share" "${UP_ARGS[@]}" >"$T/$1/up.out" 2>&1
}
up $X "$FPY"
upx=$?
check "tandem up on $X" $upx "$T/$X/up.out"
up $Y "$FPX"
upy=$?
check "tandem up on $Y" $upy "$T/$Y/up.out"

# status_get NODE: the status JSON in $T/NODE/status.json
status_get() {
	tdm "$1" status --json >"$T/$1/status.json" 2>"$T/$1/status.err"
}
# jfield NODE KEY: a key of the last status ("" when absent or null)
jfield() {
	"$NETNS_PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
v = d.get(sys.argv[2])
print("" if v is None else v)' "$T/$1/status.json" "$2" 2>/dev/null
}
connected() {
	status_get "$1" && [ "$(jfield "$1" state)" = connected ]
}
both_connected() { connected $X && connected $Y; }

paired=1
if [ $upx = 0 ] && [ $upy = 0 ]; then
	wait_for $CONNECT_S both_connected
	paired=$?
	check "both peers connect ($PAIRING), within ${CONNECT_S}s" $paired \
		"$T/$X/status.json" "$T/$Y/status.json" "$T/$X/home/state/tandem.log" "$T/$Y/home/state/tandem.log"
else
	not_ok "both peers connect ($PAIRING): not tried, 'tandem up' failed"
fi

# Hole punching (issue 12 point 3): where it works, the connection came
# from a punch; where it cannot (a symmetric NAT), each attempt gave up
# after its window, logged on both sides.
punch_log() { grep -hE "$2" "$T/$1/home/state/tandem.log" 2>/dev/null | tail -n 1; }
case $PUNCH in
works)
	# The relayed path may come first (5 s without a direct connection);
	# the punch slots go on while relayed (every 10 s in the first minute),
	# and the punched connection replaces the relayed one on both sides.
	for n in $X $Y; do
		wait_for 90 sh -c "grep -qE 'hole punch to .* connected' '$T/$n/home/state/tandem.log'"
		l=$(punch_log $n 'hole punch to .* connected')
		[ -n "$l" ]
		check "$n: the connection came from a hole punch (${l#*: })" $? "$T/$n/home/state/tandem.log"
	done
	path_direct() { status_get "$1" && [ "$(jfield "$1" path)" = direct ]; }
	for n in $X $Y; do
		wait_for 60 path_direct $n
		check "$n: the path becomes direct after the punch" $? "$T/$n/status.json" "$T/$n/home/state/tandem.log"
	done
	;;
fails)
	for n in $X $Y; do
		wait_for 60 sh -c "grep -qE 'hole punch to .* no connection within' '$T/$n/home/state/tandem.log'"
		check "$n: a hole punch was tried and given up after its window ($(punch_log $n 'hole punch to .* no connection within' | sed 's/.*hole punch/hole punch/'))" $? \
			"$T/$n/home/state/tandem.log"
	done
	;;
esac

# The trees and the status, once connected.
synced_checks() {
	# --- the trees
	same_trees() {
		[ -f "$T/$X/share/from-$Y/big.bin" ] && [ -f "$T/$Y/share/from-$X/big.bin" ] &&
			diff -r -x .tandem -x '.tandem-tmp-*' "$T/$X/share" "$T/$Y/share" >"$T/diff.out" 2>&1
	}
	wait_for $SYNC_S same_trees
	check "each side's tree arrives on the other, equal (diff -r)" $? "$T/diff.out" \
		"$T/$X/home/state/tandem.log" "$T/$Y/home/state/tandem.log"

	# changes while connected, both ways: an edit, a new file, a delete, a rename
	printf '%s: edited on %s\n' "$MARK" "$Y" >>"$T/$Y/share/from-$X/small.txt"
	printf '%s: new on %s\n' "$MARK" "$Y" >"$T/$Y/share/from-$Y/new.txt"
	rm "$T/$X/share/from-$Y/sub/deeper/nested.txt"
	mv "$T/$X/share/from-$X/empty" "$T/$X/share/from-$X/sub/moved"
	changed() {
		[ -f "$T/$X/share/from-$Y/new.txt" ] && [ ! -e "$T/$Y/share/from-$Y/sub/deeper/nested.txt" ] &&
			[ -f "$T/$Y/share/from-$X/sub/moved" ] && same_trees
	}
	wait_for $SYNC_S changed
	check "changes made while connected reach the other side both ways (edit, new, delete, rename)" $? \
		"$T/diff.out" "$T/$X/home/state/tandem.log" "$T/$Y/home/state/tandem.log"

	idle() { status_get "$1" && [ "$(jfield "$1" sync_state)" = idle ]; }
	both_idle() { idle $X && idle $Y; }
	wait_for $SYNC_S both_idle
	check "both sides say idle" $? "$T/$X/status.json" "$T/$Y/status.json"

	# --- status: the connection and its path
	# the addresses NODE may see the other at: its public ones (IPv6 first)
	addr_ok() { # addr_ok NODE-SEEN PEER_ADDR
		local want4 want6
		want4=$(public4 "$1")
		want6=$(public6 "$1")
		# an IPv4 peer on a dual-stack listener shows as [::ffff:A.B.C.D]
		case $2 in
		"$want4":[0-9]* | "[::ffff:$want4]":[0-9]* | "[$want6]":[0-9]*) return 0 ;;
		esac
		return 1
	}
	is_ipv4() {
		case $1 in
		\[::ffff:*) return 0 ;;
		\[*) return 1 ;;
		esac
		return 0
	}
	for pair in "$X $Y" "$Y $X"; do
		set -- $pair
		status_get "$1"
		st=$(jfield "$1" state)
		path=$(jfield "$1" path)
		paddr=$(jfield "$1" peer_addr)
		peer=$(jfield "$1" peer)
		fpo=$(tdm "$2" id)
		[ "$st" = connected ] && [ "$peer" = "$fpo" ]
		check "$1: status says connected to $2's fingerprint" $? "$T/$1/status.json"
		if grep -q '"path"' "$T/$1/status.json"; then
			echo "$path" | grep -Eqx "$WANT_PATH"
			check "$1: status path is '$path' (want $WANT_PATH)" $? "$T/$1/status.json"
		elif [ "$WANT_PATH" = direct ]; then
			echo "# $1: status has no \"path\" yet (issue 12 point 2); a direct connection is all there is"
		else
			not_ok "$1: status has a \"path\" (want $WANT_PATH)" "$T/$1/status.json"
		fi
		case $path in
		relayed) ;;
		*)
			# a direct connection: the peer as the internet shows it (NAT: the
			# router's address), or, with one side IPv4 only, over IPv4
			if addr_ok "$2" "$paddr" && { [ -z "$NO6" ] || is_ipv4 "$paddr"; }; then
				ok "$1: the peer's address is $paddr, $2's public address"
			else
				not_ok "$1: the peer's address '$paddr' is one of $2's public addresses ($(public4 "$2"), [$(public6 "$2")])" \
					"$T/$1/status.json"
			fi
			;;
		esac
	done
}
if [ $paired = 0 ]; then
	synced_checks
else
	not_ok "the trees and the status: not checked, the peers never connected"
fi

# --- the relay holds no plaintext
grep -c "$MARK" "$T/relay.log" >"$T/relay-grep.out"
[ "$(cat "$T/relay-grep.out")" = 0 ]
check "the relay's log holds no plaintext of the files" $?
nsx relay "$NETNS_PY" "$NETNS_DIR/memscan.py" "$RELAY_PID" "$MARK" >"$T/memscan.out" 2>&1
check "the relay's memory holds no plaintext of the files ($(tail -n1 "$T/memscan.out"))" $? "$T/memscan.out"
# The scan does see the relay's memory: a request it is still reading
# (held open from the public host) carries a second marker, which it finds.
MARK2="tandem-netns-control-$$-$RANDOM$RANDOM"
netns_bg pub "$T/hold.log" "$NETNS_PY" "$NETNS_DIR/probe.py" hold "$RELAY4" "$RELAY_PORT" \
	"GET /$MARK2 HTTP/1.1"$'\r\n'"Host: relay"$'\r\n'"X-Control: $MARK2"$'\r\n'
HOLD_PID=$NETNS_LAST_PID
scan2() {
	nsx relay "$NETNS_PY" "$NETNS_DIR/memscan.py" "$RELAY_PID" "$MARK2" >"$T/memscan2.out" 2>&1
	[ $? = 1 ]
}
wait_for 20 scan2
check "the memory scan finds a marker the relay does hold (a request it is reading)" $? "$T/memscan2.out" "$T/hold.log"
kill "$HOLD_PID" 2>/dev/null

# --- a clean stop, and nothing bad in the logs
for n in $X $Y; do
	tdm "$n" down >"$T/$n/down.out" 2>&1
	check "tandem down on $n" $? "$T/$n/down.out"
done
for who in relay $X $Y; do
	f=$T/$who/home/state/tandem.log
	[ $who = relay ] && f=$T/relay.log
	[ -f "$f" ] || continue # a daemon that never started
	! grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' "$f"
	check "no sanitizer report in the log of $who" $? "$f"
done

netns_finish
