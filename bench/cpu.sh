#!/usr/bin/env bash
# CPU time a command costs redmesh and Redis on this machine, user and
# system apart, under redis-benchmark -c 50 over 100,000 random keys (loaded
# first): for SET, GET, INCR and MSET at -P 1 and -P 16, each server's CPU
# time over 10 s of load (after 3 s of warm-up), from /proc, divided by the
# commands it answered meanwhile (INFO). Where throughput is bound by CPU,
# as on a machine whose cores the client shares, this is what decides the
# ratios of bench/redis-compare.sh. RUNS runs (default 3), the two servers
# alternating, medians; BENCH_BEFORE, another build to run beside (lib.sh),
# adds its row. Usage: [TESTS="hset ..."] bench/cpu.sh [RUNS]
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
build_redmesh
read -ra tests <<<"${TESTS:-set get incr mset}"
hz=$(getconf CLK_TCK)

pid_of() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
commands() { redis-cli -p "$1" INFO stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" {print $2}'; }
# ticks PID: user and system CPU ticks so far.
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

# measure PORT TEST P prints "rps user_us sys_us" a command.
measure() {
	local port=$1 t=$2 P=$3 pid c0 c1 u0 s0 u1 s1 bp
	pid=$(pid_of "$port")
	redis-benchmark -p "$port" -t "$t" -n 100000000 -c 50 -P "$P" -r 100000 -q >/dev/null 2>&1 &
	bp=$!
	sleep 3
	c0=$(commands "$port"); read -r u0 s0 < <(ticks "$pid")
	sleep 10
	c1=$(commands "$port"); read -r u1 s1 < <(ticks "$pid")
	kill "$bp"; wait "$bp" 2>/dev/null || true
	awk -v n=$((c1 - c0)) -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" \
		'BEGIN {printf "%.0f %.2f %.2f\n", n / 10, u * 1e6 / hz / n, s * 1e6 / hz / n}'
}

load() { rps "$1" -t set -n 200000 -c 50 -P 16 -r 100000 >/dev/null; }
compare "$runs" measure load

col() { tr ';' '\n' <<<"$1" | grep . | awk -v f="$2" '{print $f}' | median; }
printf '| command | -P | Redis rps | Redis µs user + sys | redmesh rps | redmesh µs user + sys | CPU ÷ Redis |\n|---|---:|---:|---:|---:|---:|---:|\n'
for P in 1 16; do
	for t in "${tests[@]}"; do
		ru=$(col "${R[$t,$P]}" 2) rs=$(col "${R[$t,$P]}" 3) mu=$(col "${M[$t,$P]}" 2) ms=$(col "${M[$t,$P]}" 3)
		printf '| %s | %s | %s | %s + %s | %s | %s + %s | %.1f |\n' "${t^^}" "$P" \
			"$(col "${R[$t,$P]}" 1)" "$ru" "$rs" "$(col "${M[$t,$P]}" 1)" "$mu" "$ms" \
			"$(echo "($mu + $ms) / ($ru + $rs)" | bc -l)"
		if [[ -n $before_bin ]]; then
			bu=$(col "${B[$t,$P]}" 2) bs=$(col "${B[$t,$P]}" 3)
			printf '| %s before | %s | %s | %s + %s | %s | %s + %s | %.1f |\n' "${t^^}" "$P" \
				"$(col "${R[$t,$P]}" 1)" "$ru" "$rs" "$(col "${B[$t,$P]}" 1)" "$bu" "$bs" \
				"$(echo "($bu + $bs) / ($ru + $rs)" | bc -l)"
		fi
		echo "  $t -P $P runs (rps user sys): redis ${R[$t,$P]} / before ${B[$t,$P]:-} / redmesh ${M[$t,$P]}" >&2
	done
done
