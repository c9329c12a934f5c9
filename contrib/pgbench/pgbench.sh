#!/usr/bin/env bash
# pgbench -C (a new connection per transaction) through a p2ptun tunnel and
# directly, on loopback, RUNS times each: the measurement behind README's
# "Two stream rates, for two kinds of peer". Not part of `make test`.
#
#   postgres  <-  daemon B (listen /x/pg --allow A)  <=libp2p=>  daemon A (forward)  <-  pgbench -C
#
# Usage: contrib/pgbench/pgbench.sh BIN_DIR   (BIN_DIR holds p2ptun; `make build` makes bin/)
# Needs postgres' initdb, pg_ctl and postgres, and pgbench, on PATH. As
# root, it runs as PGBENCH_USER (default postgres) through setpriv, since
# postgres refuses to run as root. Env: RUNS (3), SECS (10), CLIENTS (4);
# NAMED_RATE and NAMED_BURST set the listening daemon's
# limits.named_peer_stream_rate and _burst (the old default was 100 and
# 1000, as for any peer).
set -euo pipefail
export P2PTUN_NO_MDNS=1

bin=$(cd "${1:-bin}" && pwd)
runs=${RUNS:-3} secs=${SECS:-10} clients=${CLIENTS:-4}
for prog in initdb pg_ctl postgres pgbench; do
	command -v "$prog" >/dev/null || { echo "pgbench.sh: $prog is not on PATH (Debian: postgresql, postgresql-contrib)" >&2; exit 1; }
done
if [ "$(id -u)" = 0 ]; then
	user=${PGBENCH_USER:-postgres}
	exec setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
		env HOME=/nonexistent TMPDIR="${TMPDIR:-/tmp}" PATH="$PATH" RUNS="$runs" SECS="$secs" CLIENTS="$clients" \
		NAMED_RATE="${NAMED_RATE:-}" NAMED_BURST="${NAMED_BURST:-}" "$0" "$bin"
fi

p2ptun="$bin/p2ptun"
work=$(mktemp -d "${TMPDIR:-/tmp}/p2ptun-pgbench.XXXXXX")
pids=()
cleanup() {
	pg_ctl -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# daemon NAME: start a daemon in $work/NAME on loopback, and return once
# it answers (`p2ptun wait`).
daemon() {
	"$p2ptun" --home "$work/$1" daemon --listen-addr /ip4/127.0.0.1/tcp/0 2>"$work/$1.log" &
	pids+=($!)
	"$p2ptun" --home "$work/$1" wait --timeout 30s >/dev/null || { cat "$work/$1.log" >&2; exit 1; }
}

# a free loopback port, from the kernel.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pgport=$(free_port)
initdb -D "$work/pg" -A trust -U bench >"$work/initdb.log"
pg_ctl -D "$work/pg" -l "$work/pg.log" -w \
	-o "-h 127.0.0.1 -p $pgport -k $work -c max_connections=100 -c fsync=off" start >/dev/null
createdb_out=$(pgbench -i -q -h 127.0.0.1 -p "$pgport" -U bench postgres 2>&1) || { echo "$createdb_out" >&2; exit 1; }

for n in a b; do
	"$p2ptun" --home "$work/$n" init >/dev/null
done
cfg="$work/b/config.toml"
[ -z "${NAMED_RATE:-}" ] || sed -i "s/^named_peer_stream_rate = .*/named_peer_stream_rate = $NAMED_RATE/" "$cfg"
[ -z "${NAMED_BURST:-}" ] || sed -i "s/^named_peer_stream_burst = .*/named_peer_stream_burst = $NAMED_BURST/" "$cfg"
echo "listener's $(grep '^named_peer_stream_rate' "$cfg" | sed 's/ *#.*//'), $(grep '^named_peer_stream_burst' "$cfg" | sed 's/ *#.*//')"
daemon a
daemon b
a_id=$("$p2ptun" --home "$work/a" id | sed -n 1p)
b_addr=$("$p2ptun" --home "$work/b" id | sed -n 2p)
# A is a named peer of B's listener (--allow), so the named-peer stream
# rate applies: limits.named_peer_stream_rate, default 1000/s.
"$p2ptun" --home "$work/b" listen /x/pg "127.0.0.1:$pgport" --allow "$a_id" >/dev/null
fwd=$("$p2ptun" --home "$work/a" forward /x/pg 127.0.0.1:0 "$b_addr")
fport=${fwd##*/}

# bench NAME PORT: one pgbench run; prints "NAME tps=… failed=… exit=…".
bench() {
	local out rc=0
	out=$(pgbench -n -C -S -c "$clients" -j "$clients" -T "$secs" -h 127.0.0.1 -p "$2" -U bench postgres 2>&1) || rc=$?
	local tps failed aborted
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
	aborted=$(grep -c 'client [0-9]* aborted' <<<"$out" || true)
	echo "$1 tps=${tps:-none} failed=${failed:-?} aborted_clients=$aborted exit=$rc"
	[ "$rc" = 0 ] || { echo "$out" >&2; }
}

echo "pgbench -C -S -c $clients -T $secs, $runs runs each, interleaved"
for i in $(seq "$runs"); do
	bench "direct#$i " "$pgport"
	bench "p2ptun#$i " "$fport"
done
# A refusal by the stream rate would be logged by the listener's daemon.
echo "rate-limit refusals logged by daemon B: $(grep -c 'faster than limits' "$work/b.log" || true)"
