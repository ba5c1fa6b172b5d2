#!/usr/bin/env bash
# The floor of a command's cost at -P 1: redis-benchmark -t set -c 50
# -r 100000 against Redis's SET, the node's SET and GET, and bench/sockfloor
# (a server that answers +OK and does nothing else) in its two shapes, one
# goroutine per connection and one epoll loop. Each server's CPU time over
# the run, from /proc, divided by the requests. RUNS rounds (default 3),
# medians. Usage: [N=300000] bench/sockfloor.sh [RUNS]
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
n=${N:-300000}
build_redmesh
(cd "$BENCH_ROOT" && go build -o "$BENCH_TMP/sockfloor" ./bench/sockfloor)
hz=$(getconf CLK_TCK)
floor_port=${BENCH_FLOOR_PORT:-16390}

pid_of() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

# measure PORT TEST prints "rps user_us sys_us" a request.
measure() {
	local pid u0 s0 u1 s1 r
	pid=$(pid_of "$1")
	read -r u0 s0 < <(ticks "$pid")
	r=$(rps "$1" -t "$2" -n "$n" -c 50 -r 100000)
	read -r u1 s1 < <(ticks "$pid")
	awk -v r="$r" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" -v n="$n" \
		'BEGIN {printf "%.0f %.2f %.2f\n", r, u * 1e6 / hz / n, s * 1e6 / hz / n}'
}

declare -A res
rows=("Redis SET" "redmesh SET" "redmesh GET" "floor, goroutines" "floor, epoll")
for run in $(seq 1 "$runs"); do
	echo "round $run, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
	start_compared redis
	res[0]+="$(measure "$port" set);"
	kill "${BENCH_PIDS[-1]}"; wait "${BENCH_PIDS[-1]}" 2>/dev/null || true
	start_compared redmesh
	res[1]+="$(measure "$port" set);"
	res[2]+="$(measure "$port" get);"
	kill "${BENCH_PIDS[-1]}"; wait "${BENCH_PIDS[-1]}" 2>/dev/null || true
	for mode in goroutines epoll; do
		"$BENCH_TMP/sockfloor" -mode "$mode" -port "$floor_port" 2>/dev/null &
		BENCH_PIDS+=($!)
		wait_port "$floor_port"
		if [[ $mode == goroutines ]]; then i=3; else i=4; fi
		res[$i]+="$(measure "$floor_port" set);"
		kill "${BENCH_PIDS[-1]}"; wait "${BENCH_PIDS[-1]}" 2>/dev/null || true
	done
done
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)" >&2

col() { tr ';' '\n' <<<"$1" | grep . | awk -v f="$2" '{print $f}' | median; }
redis_rps=$(col "${res[0]}" 1)
printf '| server | rps | ÷ Redis | µs user + sys a request |\n|---|---:|---:|---:|\n'
for i in "${!rows[@]}"; do
	r=$(col "${res[$i]}" 1)
	printf '| %s | %s | %.2f | %s + %s |\n' "${rows[$i]}" "$r" "$(echo "$r / $redis_rps" | bc -l)" "$(col "${res[$i]}" 2)" "$(col "${res[$i]}" 3)"
	echo "  ${rows[$i]} runs (rps user sys): ${res[$i]}" >&2
done
