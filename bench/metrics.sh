#!/usr/bin/env bash
# What metrics cost: redis-benchmark -c 50 SET and GET at -P 1 and -P 16
# over 100,000 random keys against a node without --metrics-listen and one
# with it, scraped every second meanwhile (Prometheus scrapes every 15 s by
# default); and, given a BASE commit, against that commit's node, before
# the command statistics. RUNS runs (default 3), the variants alternating,
# each node fresh; medians. Usage: bench/metrics.sh [RUNS] [BASE]
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
base=${2:-}
build_redmesh
variants=(off on)
if [[ -n $base ]]; then
	mkdir -p "$BENCH_TMP/base-src"
	git -C "$BENCH_ROOT" archive "$base" | tar -x -C "$BENCH_TMP/base-src"
	(cd "$BENCH_TMP/base-src" && go build -o "$BENCH_TMP/redmesh-base" ./cmd/redmesh)
	variants=(base off on)
fi
tests=(set get)
metrics_port=16390
declare -A V

for run in $(seq 1 "$runs"); do
	for variant in "${variants[@]}"; do
		scraper=
		case $variant in
		base) bin="$BENCH_TMP/redmesh-base" extra=() ;;
		off) bin="$BENCH_TMP/redmesh" extra=() ;;
		on) bin="$BENCH_TMP/redmesh" extra=(--metrics-listen "$metrics_port") ;;
		esac
		dir="$BENCH_TMP/node"
		rm -rf "$dir"
		"$bin" serve --data "$dir" --listen 127.0.0.1:16380 --fsync everysec --log-level warn "${extra[@]}" >"$dir.log" 2>&1 &
		BENCH_PIDS+=($!)
		wait_port 16380
		if [[ $variant == on ]]; then
			(while curl -sf "http://127.0.0.1:$metrics_port/metrics" >/dev/null; do sleep 1; done) &
			scraper=$!
		fi
		for P in 1 16; do
			for t in "${tests[@]}"; do
				V[$variant,$t,$P]+="$(rps 16380 -t "$t" -n $((P == 1 ? 100000 : 400000)) -c 50 -P "$P" -r 100000);"
			done
		done
		[[ -z $scraper ]] || kill "$scraper" 2>/dev/null || true
		stop_port 16380
	done
	echo "run $run done" >&2
done

printf '| command | -P |'
for v in "${variants[@]}"; do printf ' %s rps |' "$v"; done
printf ' on ÷ off |\n|---|---:|'
for _ in "${variants[@]}"; do printf -- '---:|'; done
printf -- '---:|\n'
for P in 1 16; do
	for t in "${tests[@]}"; do
		printf '| %s | %s |' "${t^^}" "$P"
		for v in "${variants[@]}"; do
			printf ' %s |' "$(tr ';' '\n' <<<"${V[$v,$t,$P]}" | grep . | median)"
			echo "  $v $t -P $P runs: ${V[$v,$t,$P]//;/ }" >&2
		done
		on=$(tr ';' '\n' <<<"${V[on,$t,$P]}" | grep . | median)
		off=$(tr ';' '\n' <<<"${V[off,$t,$P]}" | grep . | median)
		printf ' %.3f |\n' "$(echo "$on / $off" | bc -l)"
	done
done
