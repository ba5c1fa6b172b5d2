#!/usr/bin/env bash
# A rolling upgrade, and a downgrade, between two builds of redmesh on
# loopback: not a benchmark, a check with the real programs of both builds.
#
# 1. Upgrade: nodes a and b of the build before (OLD) link, and write a
#    string, a counter both increment and a hash (HSET, HINCRBY). b stops and
#    starts again on its data directory as this tree's build; both then write
#    again (the counter on both, a new counter, the hash's counter, a
#    string). Prints what each node reads once they agree (or after 10 s),
#    and the lines either logged about a peer's malformed message.
# 2. Downgrade: a node of this tree's build writes a string, a counter and a
#    hash and stops cleanly; OLD starts on its data directory (and says why
#    it does not, if it does not). Then the node's data directory is moved
#    aside and OLD starts empty with a peer of this build, and streams the
#    keyspace from it.
#
# Usage: OLD=<the build before's program> bench/upgrade.sh
# Ports: BENCH_UPGRADE_PORT (default 7700) and the three after it for RESP,
# the four after those for the mesh.
source "$(dirname "$0")/lib.sh"
old=${OLD:?OLD must be the program of the build before}
build_redmesh
new="$BENCH_TMP/redmesh"
base=${BENCH_UPGRADE_PORT:-7700}

# node NAME PROGRAM PORT [PEER...]: starts PROGRAM on NAME's data directory
# (kept across restarts), RESP on PORT and the mesh on PORT+4; sets pid.
node() {
	local name=$1 prog=$2 port=$3; shift 3
	local peers=()
	for p in "$@"; do peers+=(--peer "$p"); done
	"$prog" serve --data "$BENCH_TMP/$name" --listen "127.0.0.1:$port" \
		--p2p-listen "/ip4/127.0.0.1/tcp/$((port + 4))" --mdns=no "${peers[@]}" >>"$BENCH_TMP/$name.log" 2>&1 &
	pid=$!
	BENCH_PIDS+=("$pid")
	for _ in $(seq 1 300); do
		redis-cli -p "$port" PING >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

stop() {
	kill "$1" 2>/dev/null || true
	while kill -0 "$1" 2>/dev/null; do sleep 0.1; done
}

# addr NAME PORT: NAME's mesh address, from its log.
addr() {
	echo "/ip4/127.0.0.1/tcp/$(($2 + 4))/p2p/$(grep -o 'p2p/[A-Za-z0-9]*' "$BENCH_TMP/$1.log" | head -1 | cut -d/ -f2)"
}

c() { redis-cli -p "$@"; }

# reads PORT: what the upgrade writes, as the node on PORT reads it.
reads() { echo "c=$(c "$1" GET c) c:new=$(c "$1" GET c:new) c:old=$(c "$1" GET c:old) h.n=$(c "$1" HGET h n) s:b=$(c "$1" GET s:b)"; }

echo "== upgrade: a and b of the build before, then b of this build"
pa=$base pb=$((base + 1))
node a "$old" "$pa"
A=$(addr a "$pa")
node b "$old" "$pb" "$A"
bpid=$pid
c "$pa" SET s:a hello >/dev/null
c "$pa" INCR c >/dev/null
c "$pb" INCRBY c 10 >/dev/null
c "$pb" HSET h f x >/dev/null
c "$pb" HINCRBY h n 3 >/dev/null
for _ in $(seq 1 100); do [ "$(c "$pa" GET c)" = 11 ] && [ "$(c "$pa" HGET h n)" = 3 ] && break; sleep 0.1; done
echo "before: a $(reads "$pa") / b $(reads "$pb")"
stop "$bpid"
node b "$new" "$pb" "$A"
sleep 2 # the link, and the first sync
c "$pb" INCRBY c 100 >/dev/null
c "$pb" INCR c:new >/dev/null
c "$pb" HINCRBY h n 4 >/dev/null
c "$pb" SET s:b world >/dev/null
c "$pa" INCRBY c 1000 >/dev/null
c "$pa" INCR c:old >/dev/null
for _ in $(seq 1 100); do
	[ "$(reads "$pa")" = "$(reads "$pb")" ] && [ "$(c "$pa" GET c)" = 1111 ] && break
	sleep 0.1
done
echo "after:  a $(reads "$pa") / b $(reads "$pb")  (want c=1111 c:new=1 c:old=1 h.n=7 s:b=world)"
echo "malformed messages logged: a $(grep -ciE 'misbehav|corrupt' "$BENCH_TMP/a.log" || true), b $(grep -ciE 'misbehav|corrupt' "$BENCH_TMP/b.log" || true)"
grep -hiE 'misbehav|corrupt' "$BENCH_TMP/a.log" "$BENCH_TMP/b.log" | head -2 || true
for p in "${BENCH_PIDS[@]}"; do stop "$p"; done
BENCH_PIDS=()

echo "== downgrade: a store of this build opened by the build before"
pc=$((base + 2)) pd=$((base + 3))
node c "$new" "$pc"
c "$pc" SET s hello >/dev/null
c "$pc" INCRBY c 5 >/dev/null
c "$pc" HSET h f x >/dev/null
c "$pc" HINCRBY h n 2 >/dev/null
stop "$pid"
if node c "$old" "$pc" && sleep 1 && kill -0 "$pid" 2>/dev/null; then
	echo "the build before runs on it: s=$(c "$pc" GET s) c=$(c "$pc" GET c) h.n=$(c "$pc" HGET h n)"
	stop "$pid"
else
	echo "the build before does not start: $(tail -1 "$BENCH_TMP/c.log")"
fi
echo "== downgrade by resync: the data moved aside, the build before streams it from a peer of this build"
mv "$BENCH_TMP/c" "$BENCH_TMP/c.aside"
node d "$new" "$pd"
c "$pd" SET s hello >/dev/null
c "$pd" INCRBY c 5 >/dev/null
c "$pd" HSET h f x >/dev/null
c "$pd" HINCRBY h n 2 >/dev/null
: >"$BENCH_TMP/c.log"
node c "$old" "$pc" "$(addr d "$pd")"
for _ in $(seq 1 100); do [ "$(c "$pc" GET c)" = 5 ] && [ "$(c "$pc" HGET h n)" = 2 ] && break; sleep 0.1; done
echo "the build before, resynced: s=$(c "$pc" GET s) c=$(c "$pc" GET c) h.n=$(c "$pc" HGET h n)"
c "$pc" INCR c >/dev/null
for _ in $(seq 1 100); do [ "$(c "$pd" GET c)" = 6 ] && break; sleep 0.1; done
echo "its INCR at this build's node: c=$(c "$pd" GET c) (want 6)"
