#!/usr/bin/env bash
# redmesh's lists against Redis on the same machine, in one run:
#  - throughput of LPUSH, RPUSH, LPOP, RPOP and LRANGE_100 with
#    redis-benchmark -c 50, at -P 1 and -P 16 (one list, mylist: LPUSH and
#    RPUSH grow it, LPOP and RPOP empty it, LRANGE_100 reads the first 100 of
#    a list its own LPUSHes filled); RUNS runs (default 3), the servers
#    alternating, medians and the ratio redmesh / Redis;
#  - memory (used_memory, VmRSS, the node's RssAnon, RssFile and Go heap:
#    lib.sh's memory_row) of one list of 1,000,000 elements of 20
#    bytes, pushed one a command (LPUSH) and, separately, 100 a command
#    (RPUSH), through redis-cli --pipe; on each, the p50 latency of LINDEX by
#    one client, of index 100 and of index 500,000 (the middle, which Redis
#    reaches by walking its quicklist's nodes; redis-benchmark's random
#    integers are zero-padded, which LINDEX refuses).
# Redis runs with appendonly yes, appendfsync everysec; redmesh with --fsync
# everysec. Ports: BENCH_REDIS_PORT, BENCH_REDMESH_PORT (16379, 16380);
# requests per test: N1 at -P 1, N16 at -P 16 (100,000 and 400,000);
# BENCH_BEFORE, another build to run beside (lib.sh).
# Usage: [TESTS="lpush ..."] [LOADS="lpush1 ..."] bench/lists.sh [RUNS]
# (0: memory only)
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
build_redmesh
read -ra tests <<<"${TESTS:-lpush rpush lpop rpop lrange_100}"
read -ra loads <<<"${LOADS:-lpush1 rpush100}"
lat=()

# measure PORT TEST P: requests per second of TEST (LRANGE_100's own line,
# not that of the LPUSHes redis-benchmark fills its list with).
measure() {
	local want=${2^^}
	[[ $want == LRANGE_100 ]] && want="LRANGE_100 (first 100 elements)"
	redis-benchmark -p "$1" --csv -t "$2" -n $(($3 == 1 ? ${N1:-100000} : ${N16:-400000})) -c 50 -P "$3" 2>/dev/null |
		awk -F'"' -v t="$want" '$2 == t {print $4}'
}
compare "$runs" measure

if ((runs > 0)); then ratios; fi

# One list "big" of 1,000,000 elements "element:%012d", one LPUSH each.
lpush1() {
	awk 'BEGIN {
		for (i = 0; i < 1000000; i++) printf "*3\r\n$5\r\nLPUSH\r\n$3\r\nbig\r\n$20\r\nelement:%012d\r\n", i
	}' | redis-cli -p "$1" --pipe >/dev/null
}
# The same list, RPUSHed 100 elements a command.
rpush100() {
	awk 'BEGIN {
		for (i = 0; i < 10000; i++) {
			printf "*102\r\n$5\r\nRPUSH\r\n$3\r\nbig\r\n"
			for (m = 0; m < 100; m++) printf "$20\r\nelement:%012d\r\n", i * 100 + m
		}
	}' | redis-cli -p "$1" --pipe >/dev/null
}
memory_header
for load in "${loads[@]}"; do
	memory_row "$load"
	for i in 100 500000; do
		# p50 in ms of one client's reads, Redis then redmesh
		p50() { redis-benchmark -p "$1" --csv -n 20000 -c 1 LINDEX big "$i" 2>/dev/null | awk -F'"' 'NR==2 {print $10}'; }
		lat+=("| $load | $i | $(p50 "$redis_port") | $(p50 "$redmesh_port") |")
	done
	stop_port "$redis_port"
	stop_port "$redmesh_port"
done
printf '\n| LINDEX on the list of 1,000,000 | index | redis-server p50 ms | redmesh p50 ms |\n|---|---:|---:|---:|\n'
printf '%s\n' "${lat[@]}"
