#!/usr/bin/env bash
# redmesh import of a Redis dataset beside a Redis replica's full sync of the
# same data, in one run; prints a markdown table with medians (each run on
# stderr).
#
# A redis-server (the source, appendonly no) holds 1,000,000 keys (16-byte
# keys, 100-byte values, redis-cli --pipe) plus, with TYPED=1, 10,000 hashes
# of 10 fields, 10,000 sets of 10 members, 10,000 sorted sets of 10 members,
# 10,000 lists of 10 elements and 1,000 streams of 10 entries (carried
# whole). RUNS times (default 3), alternating:
#  - redmesh: `redmesh import redis://...` into an empty data directory,
#    --fsync everysec, timed by the shell from start to exit (the data
#    directory closed, a checkpoint written);
#  - Redis: a second redis-server with an empty directory (appendonly yes,
#    appendfsync everysec, as the node's log) is told REPLICAOF the source
#    (repl-diskless-sync yes with delay 0 on the source, so the sync starts at
#    once); timed from the REPLICAOF until master_link_status:up,
#    master_sync_in_progress:0 and DBSIZE equal to the source's
#    (bench/meshwait replica).
# Ports BASE to BASE+2 (BASE 22100).
#
# Usage: [KEYS=N] [TYPED=1] [BASE=PORT] bench/import.sh [RUNS]
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
keys=${KEYS:-1000000}
src=${BASE:-22100} replica=$((${BASE:-22100} + 1)) served=$((${BASE:-22100} + 2))
build_redmesh
(cd "$BENCH_ROOT" && go build -o "$BENCH_TMP/meshwait" ./bench/meshwait)

# resp_file OUT < indexes: SET key:%012d to a 100-byte value.
resp_file() {
	awk 'BEGIN { pad = sprintf("%87s", ""); gsub(/ /, "v", pad) }
		{ k = sprintf("key:%012d", $1); v = "v" sprintf("%012d", $1) pad
		  printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v }' >"$1"
}
seq 0 $((keys - 1)) | resp_file "$BENCH_TMP/load.resp"
start_redis "$src" --appendonly no --repl-diskless-sync yes --repl-diskless-sync-delay 0
redis-cli -p "$src" --pipe <"$BENCH_TMP/load.resp" >/dev/null
if [[ ${TYPED:-0} == 1 ]]; then
	seq 0 9999 | awk '{ printf "HSET h:%d f0 v0 f1 v1 f2 v2 f3 v3 f4 v4 f5 v5 f6 v6 f7 v7 f8 v8 f9 v9\nSADD s:%d m0 m1 m2 m3 m4 m5 m6 m7 m8 m9\n", $1, $1
		printf "ZADD z:%d 0 m0 1.5 m1 2 m2 3 m3 4 m4 5 m5 6 m6 7 m7 8 m8 9 m9\nRPUSH l:%d e0 e1 e2 e3 e4 e5 e6 e7 e8 e9\n", $1, $1
		if ($1 < 1000) for (i = 0; i < 10; i++) printf "XADD x:%d * f v%d\n", $1, i }' |
		redis-cli -p "$src" >/dev/null
fi
total=$(redis-cli -p "$src" DBSIZE)
echo "source: $total keys, $(redis-cli -p "$src" INFO memory | grep -o 'used_memory_human:[^[:space:]]*')" >&2

ms_now() { date +%s%3N; }
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

imp=() rep=()
for run in $(seq 1 "$runs"); do
	dir="$BENCH_TMP/import-$run"
	t0=$(ms_now)
	"$BENCH_TMP/redmesh" import --data "$dir" --fsync everysec --log-level warn "redis://127.0.0.1:$src" >"$dir.out"
	imp+=($(($(ms_now) - t0)))
	# The node serves what was imported: check the count.
	"$BENCH_TMP/redmesh" serve --data "$dir" --listen "127.0.0.1:$served" --no-mesh --log-level warn >"$dir.log" 2>&1 &
	pid=$!
	wait_port "$served"
	got=$(redis-cli -p "$served" DBSIZE)
	kill "$pid" && wait "$pid" || true # SIGTERM: a clean stop
	[[ $got == "$total" ]] || { echo "bench: the node holds $got keys, the source $total" >&2; exit 1; }
	rm -rf "$dir"

	rdir="$BENCH_TMP/replica-$run"
	mkdir -p "$rdir"
	redis-server --port "$replica" --bind 127.0.0.1 --save '' --dir "$rdir" --appendonly yes --appendfsync everysec >"$rdir.log" 2>&1 &
	rpid=$!
	BENCH_PIDS+=("$rpid")
	wait_port "$replica"
	t0=$(date +%s%N)
	redis-cli -p "$replica" REPLICAOF 127.0.0.1 "$src" >/dev/null
	read -r ms _ < <("$BENCH_TMP/meshwait" replica -node "127.0.0.1:$replica" -keys "$total" -since "$t0" -interval 20ms)
	rep+=("$ms")
	grep -q 'MASTER <-> REPLICA sync: Finished with success' "$rdir.log" ||
		{ echo "bench: the replica did not do a full sync" >&2; exit 1; }
	# FORCE: a replica refuses to stop while it writes its first AOF
	redis-cli -p "$replica" SHUTDOWN NOSAVE NOW FORCE >/dev/null 2>&1 || true
	wait "$rpid" || true
	rm -rf "$rdir"
	echo "  run $run: redmesh import ${imp[-1]} ms; redis replica full sync ${rep[-1]} ms" >&2
done
echo "| keys | redmesh import ms | Redis replica full sync ms | import / sync |"
echo "|---:|---:|---:|---:|"
mi=$(median "${imp[@]}") mr=$(median "${rep[@]}")
echo "| $total | $mi | $mr | $(awk -v a="$mi" -v b="$mr" 'BEGIN { printf "%.1f", a / b }') |"
