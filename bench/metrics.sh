#!/usr/bin/env bash
# What metrics cost: redis-benchmark -c 50 SET and GET at -P 1 and -P 16
# over 100,000 random keys against a node without --metrics-listen ("off")
# and one with it, scraped every second meanwhile ("on"; Prometheus scrapes
# every 15 s by default); and, given a BASE commit, against that commit's
# node ("base", before the command statistics). Each test is 10 s of load
# after 3 s of warm-up; it reports the node's throughput over those 10 s
# (INFO's command count) and its CPU time per command, user and system
# together, from /proc: on a machine whose cores other work shares, the
# CPU per command varies far less than the throughput. RUNS runs (default
# 3), the variants alternating, each node fresh; medians.
# Usage: bench/metrics.sh [RUNS] [BASE]
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
# Ports of their own, free now: other benchmarks on this machine use lib.sh's
# fixed ports, and stop_port stops whatever listens on one.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 10000))
		[[ -z $(ss -ltnH "sport = :$p") ]] && echo "$p" && return
	done
}
port=$(free_port)
metrics_port=$(free_port)
hz=$(getconf CLK_TCK)
declare -A V

pid_of() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
commands() { redis-cli -p "$1" INFO stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" {print $2}'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure PORT TEST P prints "rps cpu_us_per_command".
measure() {
	local port=$1 t=$2 P=$3 pid c0 c1 k0 k1 bp
	pid=$(pid_of "$port")
	redis-benchmark -p "$port" -t "$t" -n 100000000 -c 50 -P "$P" -r 100000 -q >/dev/null 2>&1 &
	bp=$!
	sleep 3
	c0=$(commands "$port"); k0=$(ticks "$pid")
	sleep 10
	c1=$(commands "$port"); k1=$(ticks "$pid")
	kill "$bp"; wait "$bp" 2>/dev/null || true
	awk -v n=$((c1 - c0)) -v k=$((k1 - k0)) -v hz="$hz" 'BEGIN {printf "%.0f %.2f\n", n / 10, k * 1e6 / hz / n}'
}

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
		log="$BENCH_TMP/node-$variant-$run.log"
		"$bin" serve --data "$dir" --listen "127.0.0.1:$port" --fsync everysec --log-level warn "${extra[@]}" >"$log" 2>&1 &
		BENCH_PIDS+=($!)
		wait_port "$port"
		if [[ $variant == on ]]; then
			(while curl -sf "http://127.0.0.1:$metrics_port/metrics" >/dev/null; do sleep 1; done) &
			scraper=$!
		fi
		for P in 1 16; do
			for t in "${tests[@]}"; do
				V[$variant,$t,$P]+="$(measure "$port" "$t" "$P");"
			done
		done
		[[ -z $scraper ]] || kill "$scraper" 2>/dev/null || true
		stop_port "$port"
	done
	echo "run $run done" >&2
done

col() { tr ';' '\n' <<<"$1" | grep . | awk -v f="$2" '{print $f}' | median; }
printf '| command | -P |'
for v in "${variants[@]}"; do printf ' %s rps | %s µs CPU/cmd |' "$v" "$v"; done
printf ' CPU on ÷ off |\n|---|---:|'
for _ in "${variants[@]}"; do printf -- '---:|---:|'; done
printf -- '---:|\n'
for P in 1 16; do
	for t in "${tests[@]}"; do
		printf '| %s | %s |' "${t^^}" "$P"
		for v in "${variants[@]}"; do
			printf ' %s | %s |' "$(col "${V[$v,$t,$P]}" 1)" "$(col "${V[$v,$t,$P]}" 2)"
			echo "  $v $t -P $P runs (rps µs): ${V[$v,$t,$P]//;/ / }" >&2
		done
		printf ' %.3f |\n' "$(echo "$(col "${V[on,$t,$P]}" 2) / $(col "${V[off,$t,$P]}" 2)" | bc -l)"
	done
done
