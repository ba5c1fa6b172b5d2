#!/usr/bin/env bash
# Geo commands against Redis on the same machine, in one run: GEOADD (one
# key growing to ~63,000 members at one point, -r 100000) and GEOSEARCH
# (the 10 nearest within 20 km of a random member of 100,000 points spread
# over Europe, preloaded with redis-cli --pipe) with redis-benchmark's
# generic command mode, -c 50, at -P 1 and -P 16; RUNS runs (default 3),
# the servers alternating, medians and the ratio redmesh / Redis.
# Redis runs with appendonly yes, appendfsync everysec; redmesh with --fsync
# everysec. Ports: BENCH_REDIS_PORT and BENCH_REDMESH_PORT (16379, 16380).
# Usage: bench/geo.sh [RUNS]
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
build_redmesh

# 100,000 points "m:%012d" (redis-benchmark's __rand_int__ form) in
# longitude -10..30, latitude 35..60, GEOADDed 100 at a time.
points() {
	awk 'BEGIN {
		srand(1)
		for (i = 0; i < 1000; i++) {
			printf "*302\r\n$6\r\nGEOADD\r\n$3\r\ngeo\r\n"
			for (m = 0; m < 100; m++) {
				lon = sprintf("%.6f", -10 + 40 * rand()); lat = sprintf("%.6f", 35 + 25 * rand())
				printf "$%d\r\n%s\r\n$%d\r\n%s\r\n$14\r\nm:%012d\r\n", length(lon), lon, length(lat), lat, i * 100 + m
			}
		}
	}' | redis-cli -p "$1" --pipe >/dev/null
}

declare -A cmd=(
	[geoadd]="GEOADD geoadd 13.361389 38.115556 m:__rand_int__"
	[geosearch]="GEOSEARCH geo FROMMEMBER m:__rand_int__ BYRADIUS 20 km ASC COUNT 10"
)
tests=(geoadd geosearch)
measure() {
	local n=$(($3 == 1 ? 50000 : 200000))
	# shellcheck disable=SC2086 # the command's words
	rps "$1" -n "$n" -c 50 -P "$3" -r 100000 ${cmd[$2]}
}
label() { echo "${cmd[$1]}"; }
compare "$runs" measure points
ratios label
