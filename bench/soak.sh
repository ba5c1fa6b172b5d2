#!/usr/bin/env bash
# A soak: SET -P 16 over 1,000,000 keys (100-byte values) for MINUTES
# (default 10) against one node with --fsync everysec, and every INTERVAL
# seconds (default 30) the node's memory (VmRSS, RssAnon, RssFile), its data
# directory on disk, the log's retained bytes and the last checkpoint, to
# show both stay bounded. Usage: bench/soak.sh [MINUTES] [INTERVAL]
source "$(dirname "$0")/lib.sh"
minutes=${1:-10}
interval=${2:-30}
build_redmesh
start_redmesh 16380 --fsync everysec
dir="$BENCH_TMP/redmesh-16380"
redis-benchmark -p 16380 -t set -n 2000000000 -c 50 -P 16 -r 1000000 -d 100 -q >/dev/null 2>&1 &
load=$!
mib() { echo $(($1 / 1024)); }
info() { redis-cli -p 16380 INFO persistence | tr -d '\r' | awk -F: -v f="$1" '$1 == f {print $2}'; }
printf '| minute | VmRSS MiB | RssAnon MiB | RssFile MiB | disk MiB | log MiB | checkpoint MiB | keys | SET rps |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
start=$(date +%s)
last_calls=0
end=$((start + minutes * 60))
while (($(date +%s) < end)); do
	sleep "$interval"
	now=$(date +%s)
	calls=$(redis-cli -p 16380 INFO stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" {print $2}')
	printf '| %.1f | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
		"$(echo "($now - $start) / 60" | bc -l)" \
		"$(mib "$(rss_kb 16380)")" "$(mib "$(rss_kb 16380 RssAnon)")" "$(mib "$(rss_kb 16380 RssFile)")" \
		"$(du -sm "$dir" | cut -f1)" "$(($(info wal_bytes) >> 20))" "$(($(info checkpoint_bytes) >> 20))" \
		"$(redis-cli -p 16380 DBSIZE)" "$(((calls - last_calls) / interval))"
	last_calls=$calls
done
kill "$load" 2>/dev/null || true
