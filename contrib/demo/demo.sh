#!/usr/bin/env bash
# A working p2ptun tunnel on loopback, end to end:
#   echo service  <-  daemon B (listen /x/demo)  <=libp2p=>  daemon A (forward)  <-  client
# Usage: contrib/demo/demo.sh BIN_DIR   (make demo builds the binaries first)
set -euo pipefail
# The demo stays on loopback: its daemons do not announce themselves on the
# LAN (mDNS).
export P2PTUN_NO_MDNS=1

bin=${1:-bin}
p2ptun="$bin/p2ptun"
work=$(mktemp -d "${TMPDIR:-/tmp}/p2ptun-demo.XXXXXX")
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# wait_for FILE: poll until FILE exists (the daemons' readiness signal).
wait_for() {
	for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.1; done
	echo "demo: $1 did not appear within 20s" >&2
	cat "$work"/*.log >&2 || true
	exit 1
}

step "start a local echo service (the thing we want to share)"
"$bin/demo-echo" -addr 127.0.0.1:0 -addr-file "$work/echo.addr" &
pids+=($!)
wait_for "$work/echo.addr"
target=$(cat "$work/echo.addr")
echo "echo service on $target"

step "start two daemons on loopback, each with a throwaway identity"
for n in a b; do
	"$p2ptun" --home "$work/$n" daemon --ephemeral --listen-addr /ip4/127.0.0.1/tcp/0 \
		--ready-file "$work/$n.ready" 2>"$work/$n.log" &
	pids+=($!)
done
wait_for "$work/a.ready"
wait_for "$work/b.ready"
a_id=$("$p2ptun" --home "$work/a" id | sed -n 1p)
b_addr=$("$p2ptun" --home "$work/b" id | sed -n 2p)
echo "A is $a_id"
echo "B is reachable at $b_addr"

step "B: expose the echo service as /x/demo, to A only"
echo "\$ p2ptun listen /x/demo $target --allow $a_id"
"$p2ptun" --home "$work/b" listen /x/demo "$target" --allow "$a_id"

step "A: forward a free local port to B's /x/demo"
echo "\$ p2ptun forward /x/demo /ip4/127.0.0.1/tcp/0 $b_addr"
local_addr=$("$p2ptun" --home "$work/a" forward /x/demo /ip4/127.0.0.1/tcp/0 "$b_addr")
port=${local_addr##*/}
echo "$local_addr"

step "talk to 127.0.0.1:$port as if the service were local"
exec 3<>"/dev/tcp/127.0.0.1/$port"
msg="hello through p2ptun at $(date +%T)"
printf '%s\n' "$msg" >&3
IFS= read -r reply <&3
echo "sent:     $msg"
echo "received: $reply"
[ "$reply" = "$msg" ] || { echo "demo: FAILED: the reply differs" >&2; exit 1; }

step "what A's daemon shows while the connection is open"
"$p2ptun" --home "$work/a" ls --headers
"$p2ptun" --home "$work/a" stream ls --headers
exec 3<&- 3>&-

step "stop both daemons (SIGTERM): listeners close, sockets are removed"
for pid in "${pids[@]:1}"; do kill -TERM "$pid"; done
for pid in "${pids[@]:1}"; do wait "$pid"; done
[ ! -e "$work/a/api.sock" ] && [ ! -e "$work/b/api.sock" ]
echo
echo "demo OK: bytes went client -> A -> libp2p -> B -> echo service and back"
