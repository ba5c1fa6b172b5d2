#!/usr/bin/env bash
# redmesh's typed commands against Redis on the same machine, in one run:
#  - throughput of HSET, SADD, SPOP, INCR and ZADD with redis-benchmark -c 50,
#    at -P 1 and -P 16 (-r 100000: HSET, SADD and ZADD grow one hash, one set
#    and one sorted set to ~63,000 fields and members, SPOP empties the set,
#    INCR spreads over 100,000 counters); RUNS runs (default 3), the servers
#    alternating, medians and the ratio redmesh / Redis;
#  - memory (used_memory, VmRSS, and the node's RssAnon, RssFile and Go heap:
#    lib.sh's memory_row) after loading 100,000 hashes of 10 fields and,
#    separately, one set and one sorted set of 1,000,000 members
#    (redis-cli --pipe), or nothing (LOADS=empty); on the sorted set, the p50 latency of reads by one
#    client (ZRANGEBYSCORE of 10 members from a random score, ZRANK and
#    ZSCORE of a random member).
# Redis runs with appendonly yes, appendfsync everysec; redmesh with --fsync
# everysec. Requests per test: N1 at -P 1, N16 at -P 16 (100,000 and
# 400,000); BENCH_BEFORE, another build to run beside (lib.sh). Usage: [TESTS="zadd ..."] [LOADS="zmembers ..."] bench/types.sh
# [RUNS] (0: memory only)
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
build_redmesh
read -ra tests <<<"${TESTS:-hset sadd spop incr zadd}"
read -ra loads <<<"${LOADS:-hashes members zmembers}"
zlat=()

measure() { rps "$1" -t "$2" -n $(($3 == 1 ? ${N1:-100000} : ${N16:-400000})) -c 50 -P "$3" -r 100000; }
compare "$runs" measure

if ((runs > 0)); then ratios; fi

# 100,000 hashes "h:%06d" of 10 fields "field:N" with 10-byte values.
hashes() {
	awk 'BEGIN {
		for (i = 0; i < 100000; i++) {
			printf "*22\r\n$4\r\nHSET\r\n$8\r\nh:%06d\r\n", i
			for (f = 0; f < 10; f++) printf "$7\r\nfield:%d\r\n$10\r\nvalue%05d\r\n", f, f
		}
	}' | redis-cli -p "$1" --pipe >/dev/null
}
# One set of 1,000,000 members "member:%012d", SADDed 100 at a time.
members() {
	awk 'BEGIN {
		for (i = 0; i < 10000; i++) {
			printf "*102\r\n$4\r\nSADD\r\n$3\r\nbig\r\n"
			for (m = 0; m < 100; m++) printf "$19\r\nmember:%012d\r\n", i * 100 + m
		}
	}' | redis-cli -p "$1" --pipe >/dev/null
}
# One sorted set of 1,000,000 members "member:%012d" with scores 0 to 999,999
# in a scattered order, ZADDed 100 at a time.
zmembers() {
	awk 'BEGIN {
		for (i = 0; i < 10000; i++) {
			printf "*202\r\n$4\r\nZADD\r\n$4\r\nzbig\r\n"
			for (m = 0; m < 100; m++) {
				n = i * 100 + m
				s = sprintf("%d", (n * 7919) % 1000000)
				printf "$%d\r\n%s\r\n$19\r\nmember:%012d\r\n", length(s), s, n
			}
		}
	}' | redis-cli -p "$1" --pipe >/dev/null
}
memory_header
for load in "${loads[@]}"; do
	memory_row "$load"
	if [[ $load == zmembers ]]; then
		lat[0]="ZRANGEBYSCORE zbig __rand_int__ +inf LIMIT 0 10"
		lat[1]="ZRANK zbig member:__rand_int__"
		lat[2]="ZSCORE zbig member:__rand_int__"
		for q in "${lat[@]}"; do
			# p50 in ms of one client's reads, Redis then redmesh
			p50() { redis-benchmark -p "$1" --csv -n 20000 -c 1 -r 1000000 $q 2>/dev/null | awk -F'"' 'NR==2 {print $10}'; }
			zlat+=("| ${q%% *} | $(p50 "$redis_port") | $(p50 "$redmesh_port") |")
		done
	fi
	stop_port "$redis_port"
	stop_port "$redmesh_port"
done
if ((${#zlat[@]})); then
	printf '\n| read on the sorted set of 1,000,000 | redis-server p50 ms | redmesh p50 ms |\n|---|---:|---:|\n'
	printf '%s\n' "${zlat[@]}"
fi
