#!/usr/bin/env bash
# INCRBYFLOAT and HINCRBYFLOAT throughput against Redis on the same machine,
# in one run: redis-benchmark -c 50 at -P 1 and -P 16, -r 100000 (increments
# spread over 100,000 keys, or over one field of 100,000 hashes), RUNS runs (default 3),
# the servers alternating, medians and the ratio redmesh / Redis. Redis runs
# with appendonly yes, appendfsync everysec; redmesh with --fsync everysec.
# Usage: bench/floats.sh [RUNS]; REDMESH_BIN names a built node to measure
# instead of this checkout's.
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
if [[ -n ${REDMESH_BIN:-} ]]; then cp "$REDMESH_BIN" "$BENCH_TMP/redmesh"; else build_redmesh; fi
tests=(incrbyfloat hincrbyfloat)

measure() {
	local n=$(($3 == 1 ? 100000 : 400000))
	case $2 in
	incrbyfloat) rps "$1" -n "$n" -c 50 -P "$3" -r 100000 INCRBYFLOAT f:__rand_int__ 1.5 ;;
	hincrbyfloat) rps "$1" -n "$n" -c 50 -P "$3" -r 100000 HINCRBYFLOAT fh:__rand_int__ f 1.5 ;;
	esac
}
compare "$runs" measure
ratios
