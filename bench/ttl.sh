#!/usr/bin/env bash
# The session-cache workload of expiry: ROUNDS rounds (default 4) of
# 300,000 new keys `SET sess:R:N <64 B> EX 1` through redis-cli --pipe,
# 12 s apart, into redis-server (appendonly yes, appendfsync everysec) and
# one redmesh node (--fsync everysec, no peers) side by side. For each round
# and server: how long until DBSIZE is 0 again after the round was written,
# then at the round's 12 s mark DBSIZE, RSS and the data directory's size,
# and the CPU the server used from the end of the writes to that mark (the
# expiry's, with whatever else runs in the background) as a share of a core;
# the peak sweep rate is the highest rise of INFO's expired_keys over half
# a second.
# Ports 21579 (Redis) and 21580 (redmesh). Usage: bench/ttl.sh [ROUNDS]
source "$(dirname "$0")/lib.sh"
rounds=${1:-4}
keys=300000
build_redmesh
hz=$(getconf CLK_TCK)

start_redis 21579 --appendonly yes --appendfsync everysec
start_redmesh 21580 --fsync everysec

pid_of() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
dbsize() { redis-cli -p "$1" DBSIZE; }
expired() { redis-cli -p "$1" INFO stats | tr -d '\r' | awk -F: '$1 == "expired_keys" {print $2}'; }
declare -A dir=([21579]="$BENCH_TMP/redis-21579" [21580]="$BENCH_TMP/redmesh-21580")
declare -A name=([21579]=redis-server [21580]=redmesh)

# payload R writes round R's commands in the protocol.
payload() {
	awk -v r="$1" -v n="$keys" 'BEGIN {
		v = sprintf("%064d", 0)
		for (i = 0; i < n; i++) {
			k = "sess:" r ":" i
			printf "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$64\r\n%s\r\n$2\r\nEX\r\n$1\r\n1\r\n", length(k), k, v
		}
	}' >"$BENCH_TMP/round-$1.resp"
}

now_ms() { date +%s%3N; }
for r in $(seq 1 "$rounds"); do payload "$r"; done
printf '| round | server | written in s | DBSIZE 0 after s | peak sweep keys/s | DBSIZE at 12 s | RSS MiB | disk MiB (allocated / apparent) | CPU from writes to 12 s |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|\n'
# One server at a time, its rounds 12 s apart, so neither takes the other's
# cores.
for port in 21579 21580; do
	pid=$(pid_of "$port")
	for r in $(seq 1 "$rounds"); do
		t0=$(now_ms)
		redis-cli -p "$port" --pipe <"$BENCH_TMP/round-$r.resp" >/dev/null
		t1=$(now_ms)
		c1=$(ticks "$pid")
		zero="" peak=0 e0=$(expired "$port") m0=$(now_ms)
		while (($(now_ms) - t0 < 12000)); do
			if [[ -z $zero && $(dbsize "$port") == 0 ]]; then zero=$(now_ms); fi
			sleep 0.5
			e1=$(expired "$port") m1=$(now_ms)
			rate=$(((e1 - e0) * 1000 / (m1 - m0)))
			((rate > peak)) && peak=$rate
			e0=$e1 m0=$m1
		done
		c2=$(ticks "$pid")
		t2=$(now_ms)
		printf '| %d | %s | %.1f | %s | %s | %s | %.0f | %s | %.0f%% |\n' "$r" "${name[$port]}" \
			"$(echo "($t1 - $t0) / 1000" | bc -l)" \
			"$([[ -n $zero ]] && printf '%.1f' "$(echo "($zero - $t0) / 1000" | bc -l)" || echo '> 12')" "$peak" \
			"$(dbsize "$port")" "$(echo "$(rss_kb "$port") / 1024" | bc -l)" "$(disk_mb "${dir[$port]}")" \
			"$(echo "100 * ($c2 - $c1) / $hz / (($t2 - $t1) / 1000)" | bc -l)"
	done
done
echo "redmesh INFO after the last round:" >&2
redis-cli -p 21580 INFO keyspace | tr -d '\r' >&2
redis-cli -p 21580 INFO stats | tr -d '\r' | grep -E '^expired_keys' >&2
redis-cli -p 21580 INFO persistence | tr -d '\r' | grep -E 'wal|checkpoint' >&2 || true
