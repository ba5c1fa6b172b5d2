#!/usr/bin/env bash
# Start-up with 1,000,000 keys (16-byte keys, 100-byte values), redmesh
# against redis-server restarting from an RDB of the same data, RUNS times
# (default 3), in one run: the time from starting the process to the first
# PING answered with PONG (Redis answers -LOADING until its data is in).
#  - redmesh after a clean stop (its checkpoint holds everything);
#  - redmesh after kill -9 with the last 100,000 writes only in the log;
#  - redis-server from its RDB (SAVE, then SHUTDOWN NOSAVE).
# Usage: bench/startup.sh [RUNS]
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
build_redmesh

pipe_keys() { # pipe_keys PORT FIRST COUNT
	awk -v v="$(head -c 100 /dev/zero | tr '\0' 'v')" -v first="$2" -v n="$3" 'BEGIN {
		for (i = first; i < first + n; i++) {
			k = sprintf("key:%012d", i)
			printf "*3\r\n$3\r\nSET\r\n$16\r\n%s\r\n$100\r\n%s\r\n", k, v
		}
	}' | redis-cli -p "$1" --pipe >/dev/null
}

# ready_ms PORT START_NS: milliseconds from START_NS until PING answers PONG.
ready_ms() {
	until [[ "$(redis-cli -p "$1" PING 2>/dev/null)" == PONG ]]; do sleep 0.005; done
	echo $((($(date +%s%N) - $2) / 1000000))
}

pid_of() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }

rm_dir="$BENCH_TMP/redmesh-startup"
start_node() {
	"$BENCH_TMP/redmesh" serve --data "$rm_dir" --listen 127.0.0.1:16480 --no-mesh --log-level warn >>"$rm_dir.log" 2>&1 &
	BENCH_PIDS+=($!)
}
rm -rf "$rm_dir"
start_node
wait_port 16480
pipe_keys 16480 0 1000000
stop_port 16480

rd_dir="$BENCH_TMP/redis-startup"
mkdir -p "$rd_dir"
start_rd() {
	redis-server --port 16479 --bind 127.0.0.1 --save '' --appendonly no --dir "$rd_dir" >>"$rd_dir.log" 2>&1 &
	BENCH_PIDS+=($!)
}
start_rd
wait_port 16479
pipe_keys 16479 0 1000000
redis-cli -p 16479 SAVE >/dev/null
redis-cli -p 16479 SHUTDOWN NOSAVE >/dev/null 2>&1 || true
sleep 1

declare -a clean crash redis
for run in $(seq 1 "$runs"); do
	t0=$(date +%s%N); start_node; clean+=("$(ready_ms 16480 "$t0")")
	[[ $(redis-cli -p 16480 DBSIZE) == 1000000 ]] || { echo "redmesh lost keys" >&2; exit 1; }
	pipe_keys 16480 500000 100000 # 100,000 writes after the checkpoint
	kill -9 "$(pid_of 16480)"; sleep 0.5
	t0=$(date +%s%N); start_node; crash+=("$(ready_ms 16480 "$t0")")
	[[ $(redis-cli -p 16480 DBSIZE) == 1000000 ]] || { echo "redmesh lost keys" >&2; exit 1; }
	stop_port 16480

	t0=$(date +%s%N); start_rd; redis+=("$(ready_ms 16479 "$t0")")
	[[ $(redis-cli -p 16479 DBSIZE) == 1000000 ]] || { echo "redis lost keys" >&2; exit 1; }
	redis-cli -p 16479 SHUTDOWN NOSAVE >/dev/null 2>&1 || true
	sleep 0.5
	echo "run $run: redmesh clean ${clean[-1]} ms, after kill -9 ${crash[-1]} ms; redis-server from RDB ${redis[-1]} ms" >&2
done
med() { printf '%s\n' "$@" | median; }
printf '| 1M keys, start to first PONG (ms) | median of %d |\n|---|---:|\n' "$runs"
printf '| redmesh after a clean stop | %s |\n' "$(med "${clean[@]}")"
printf '| redmesh after kill -9, 100,000 log entries to replay | %s |\n' "$(med "${crash[@]}")"
printf '| redis-server from an RDB | %s |\n' "$(med "${redis[@]}")"
