#!/usr/bin/env bash
# Write throughput under each durability mode: redis-benchmark -t set
# -n 100000 -c 50 against redmesh (--fsync always / everysec) and redis-server
# (appendonly yes, appendfsync always / everysec), in one run, each measured
# RUNS times (default 5); prints medians and the ratio redmesh / Redis.
# Usage: bench/fsync.sh [RUNS]
source "$(dirname "$0")/lib.sh"
runs=${1:-5}
build_redmesh

printf '| fsync | redis-server rps | redmesh rps | ratio |\n|---|---:|---:|---:|\n'
for mode in always everysec; do
	r=() m=()
	for _ in $(seq 1 "$runs"); do
		# Alternate the two servers so that machine noise hits both alike.
		start_redis 16379 --appendonly yes --appendfsync "$mode"
		r+=("$(rps 16379 -t set -n 100000 -c 50)")
		stop_port 16379
		start_redmesh 16380 --fsync "$mode"
		m+=("$(rps 16380 -t set -n 100000 -c 50)")
		stop_port 16380
	done
	rm=$(printf '%s\n' "${r[@]}" | median)
	mm=$(printf '%s\n' "${m[@]}" | median)
	printf '| %s | %s | %s | %.2f |\n' "$mode" "$rm" "$mm" "$(echo "$mm / $rm" | bc -l)"
	echo "  runs: redis ${r[*]} / redmesh ${m[*]}" >&2
done
