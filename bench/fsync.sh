#!/usr/bin/env bash
# Write throughput under each durability mode: redis-benchmark -t set
# -n 100000 -c 50 -r 100000 against redmesh (--fsync always / everysec) and
# redis-server (appendonly yes, appendfsync always / everysec), in one run,
# each measured RUNS times (default 5), the servers alternating; prints
# medians and the ratio redmesh / Redis. BENCH_BEFORE, another build
# (lib.sh), runs between the two and adds its columns; the ports are lib.sh's.
# MODES picks the modes (default "always everysec").
# Usage: bench/fsync.sh [RUNS]
source "$(dirname "$0")/lib.sh"
runs=${1:-5}
modes=${MODES:-always everysec}
build_redmesh

set_rps() { rps "$1" -t set -n 100000 -c 50 -r 100000; }

if [[ -n $before_bin ]]; then
	printf '| fsync | redis-server rps | before rps | redmesh rps | ratio before | ratio |\n|---|---:|---:|---:|---:|---:|\n'
else
	printf '| fsync | redis-server rps | redmesh rps | ratio |\n|---|---:|---:|---:|\n'
fi
for mode in $modes; do
	r=() b=() m=()
	for _ in $(seq 1 "$runs"); do
		# Alternate the servers so that machine noise hits them alike.
		start_redis "$redis_port" --appendonly yes --appendfsync "$mode"
		r+=("$(set_rps "$redis_port")")
		stop_port "$redis_port"
		if [[ -n $before_bin ]]; then
			dir="$BENCH_TMP/before-$redmesh_port"
			rm -rf "$dir"
			"$before_bin" serve --data "$dir" --listen "127.0.0.1:$redmesh_port" --log-level warn --fsync "$mode" >"$dir.log" 2>&1 &
			BENCH_PIDS+=($!)
			wait_port "$redmesh_port"
			b+=("$(set_rps "$redmesh_port")")
			stop_port "$redmesh_port"
		fi
		start_redmesh "$redmesh_port" --fsync "$mode"
		m+=("$(set_rps "$redmesh_port")")
		stop_port "$redmesh_port"
	done
	rm=$(printf '%s\n' "${r[@]}" | median)
	mm=$(printf '%s\n' "${m[@]}" | median)
	if [[ -n $before_bin ]]; then
		bm=$(printf '%s\n' "${b[@]}" | median)
		printf '| %s | %s | %s | %s | %.2f | %.2f |\n' "$mode" "$rm" "$bm" "$mm" "$(echo "$bm / $rm" | bc -l)" "$(echo "$mm / $rm" | bc -l)"
		echo "  runs: redis ${r[*]} / before ${b[*]} / redmesh ${m[*]}" >&2
	else
		printf '| %s | %s | %s | %.2f |\n' "$mode" "$rm" "$mm" "$(echo "$mm / $rm" | bc -l)"
		echo "  runs: redis ${r[*]} / redmesh ${m[*]}" >&2
	fi
done
