#!/usr/bin/env bash
# redmesh against Redis on the same machine, in one run:
#  - throughput of SET, GET, INCR and MSET with redis-benchmark -c 50, at
#    -P 1 and -P 16, over 100,000 random keys; RUNS runs (default 5), the two
#    servers alternating, medians and the ratio redmesh / Redis;
#  - resident memory and used_memory after loading 1,000,000 keys of 16 bytes with 100-byte
#    values (redis-cli --pipe), and that ratio.
# Redis runs with appendonly yes, appendfsync everysec; redmesh with
# --fsync everysec. Usage: bench/redis-compare.sh [RUNS] (0: memory only)
source "$(dirname "$0")/lib.sh"
runs=${1:-5}
build_redmesh
tests=(set get incr mset)

measure() { rps "$1" -t "$2" -n $(($3 == 1 ? 100000 : 400000)) -c 50 -P "$3" -r 100000; }
compare "$runs" measure

if ((runs > 0)); then ratios; fi

# Memory: 1,000,000 keys "key:%012d" (16 bytes) with 100-byte values.
load() {
	awk -v v="$(head -c 100 /dev/zero | tr '\0' 'v')" 'BEGIN {
		for (i = 0; i < 1000000; i++) {
			k = sprintf("key:%012d", i)
			printf "*3\r\n$3\r\nSET\r\n$16\r\n%s\r\n$100\r\n%s\r\n", k, v
		}
	}' | redis-cli -p "$1" --pipe >/dev/null
}
start_redis "$redis_port" --appendonly yes --appendfsync everysec
start_redmesh "$redmesh_port" --fsync everysec
for port in "$redis_port" "$redmesh_port"; do load "$port"; done
# Read once both have settled: Badger compacts for a few seconds after the
# load, and the node's memory policy then collects and returns what that left
# (node/memory.go); Redis's RSS does not move.
sleep 15
mib() { echo "$1/1024" | bc -l; }
rk=$(rss_kb "$redis_port")
printf '\n| 1M keys, 16 B keys, 100 B values | redis-server | redmesh | ÷ Redis VmRSS |\n|---|---:|---:|---:|\n'
for f in VmRSS RssAnon RssFile; do
	r=$(rss_kb "$redis_port" "$f") m=$(rss_kb "$redmesh_port" "$f")
	printf '| %s (MiB) | %.1f | %.1f | %.2f |\n' "$f" "$(mib "$r")" "$(mib "$m")" "$(echo "$m/$rk" | bc -l)"
done
used() { redis-cli -p "$1" INFO memory | tr -d '\r' | sed -n 's/^used_memory://p'; }
r=$(used "$redis_port") m=$(used "$redmesh_port")
printf '| used_memory (MiB; ratio: to Redis used_memory) | %.1f | %.1f | %.2f |\n' "$(echo "$r/1048576" | bc -l)" "$(echo "$m/1048576" | bc -l)" "$(echo "$m/$r" | bc -l)"
printf '| DBSIZE | %s | %s | |\n' "$(redis-cli -p "$redis_port" DBSIZE)" "$(redis-cli -p "$redmesh_port" DBSIZE)"
