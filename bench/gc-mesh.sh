#!/usr/bin/env bash
# Garbage collection on a 3-node mesh, beside one redis-server (appendonly
# yes, appendfsync everysec) given the same writes. MODE is
#   rounds: bench/ttl.sh's workload, SECONDS rounds of 300,000 new keys
#        `SET sess:R:N <64 B> EX 1`, sent to the first node and Redis at
#        once; a row per server and round at the round's mark, 12 s after
#        the later of the two servers' writes was answered: how long the
#        writes took, how long DBSIZE took to reach 0 after them (for the
#        nodes, after the first node's), and the CPU each server used from
#        the round's start to the mark; the next round starts at the mark;
#   ttl: RATE new keys a second, `SET gc:N <64 B> EX 1` (a session cache);
#   del: RATE keys a second written and deleted (`SET gc:N <64 B>`, then
#        `DEL` of the key written 2 s before), so tombstones pile up unless
#        collected;
#   lag: the stable time at rest: ten `SET lag:N v` a second to the first
#        node for SECONDS, every node's stable lag read twice a second after
#        the first 5 s, and its median, 90th percentile and maximum printed.
# The writes go through redis-cli --pipe in one-second chunks to the first
# node (and to Redis). Every STEP seconds (default 30) it prints, per server,
# DBSIZE, tombstones (redmesh's gc_tombstones), RSS and the data directory's
# size, and for the first node how far its stable time is behind.
# The rounds' rows give for each node the log entries it read from its
# peers' logs in the round (mesh_catchup_entries), in how many catch-ups
# (mesh_catchups_by_log), and the pushes of its writes it dropped
# (mesh_push_dropped), of them in parentheses those dropped at a peer's push
# stream, once for each peer (mesh_push_dropped_stream; the rest were
# dropped at its queue of local writes).
# Ports: Redis on BENCH_GC_PORT (default 21379), the nodes' RESP on the next
# three and their mesh on BENCH_GC_MESH_PORT + 1 to + 3 (default
# BENCH_GC_PORT + 100). REDMESH names a binary built beforehand instead of
# this tree's.
# Usage: bench/gc-mesh.sh rounds ROUNDS | bench/gc-mesh.sh ttl|del SECONDS [RATE] [STEP]
#        | bench/gc-mesh.sh lag SECONDS
source "$(dirname "$0")/lib.sh"
mode=${1:?usage: bench/gc-mesh.sh rounds|ttl|del|lag SECONDS|ROUNDS [RATE] [STEP]}
secs=${2:?usage: bench/gc-mesh.sh rounds|ttl|del|lag SECONDS|ROUNDS [RATE] [STEP]}
rate=${3:-10000}
step=${4:-30}
if [[ -n ${REDMESH:-} ]]; then cp "$REDMESH" "$BENCH_TMP/redmesh"; else build_redmesh; fi

rp=${BENCH_GC_PORT:-21379}
mp=${BENCH_GC_MESH_PORT:-$((rp + 100))}
n1=$((rp + 1)) n2=$((rp + 2)) n3=$((rp + 3))
start_redis "$rp" --appendonly yes --appendfsync everysec
start_redmesh "$n1" --fsync everysec --p2p-listen /ip4/127.0.0.1/tcp/$((mp + 1))
id=$(redis-cli -p "$n1" INFO replication | tr -d '\r' | awk -F: '$1 == "mesh_peer_id" {print $2}')
for i in 1 2; do
	start_redmesh $((n1 + i)) --fsync everysec --p2p-listen /ip4/127.0.0.1/tcp/$((mp + 1 + i)) \
		--peer "/ip4/127.0.0.1/tcp/$((mp + 1))/p2p/$id"
done
info() { redis-cli -p "$1" INFO "${3:-replication}" | tr -d '\r' | awk -F: -v f="$2" '$1 == f {print $2}'; }
for _ in $(seq 1 100); do
	[[ $(info "$n1" mesh_connected_peers) == 2 ]] && break
	sleep 0.1
done

# chunk S writes second S's commands in the protocol.
chunk() {
	awk -v s="$1" -v n="$rate" -v mode="$mode" 'BEGIN {
		v = sprintf("%064d", 0)
		for (i = 0; i < n; i++) {
			k = "gc:" (s * n + i)
			if (mode == "ttl") {
				printf "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$64\r\n%s\r\n$2\r\nEX\r\n$1\r\n1\r\n", length(k), k, v
				continue
			}
			printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$64\r\n%s\r\n", length(k), k, v
			if (s >= 2) {
				d = "gc:" ((s - 2) * n + i)
				printf "*2\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n", length(d), d
			}
		}
	}'
}

row() {
	local t=$1 port
	for port in "$rp" "$n1" "$n2" "$n3"; do
		local dir="$BENCH_TMP/redmesh-$port" name=redmesh-$((port - rp)) tomb=- lag=-
		if [[ $port == "$rp" ]]; then
			dir="$BENCH_TMP/redis-$rp" name=redis-server
		else
			tomb=$(info "$port" gc_tombstones)
			lag=$(info "$port" gc_stable_lag_ms)
		fi
		printf '| %d | %s | %s | %s | %.0f | %s | %s |\n' "$t" "$name" "$(redis-cli -p "$port" DBSIZE)" "$tomb" \
			"$(echo "$(rss_kb "$port") / 1024" | bc -l)" "$(disk_mb "$dir")" "$lag"
	done
}

if [[ $mode == lag ]]; then
	sleep 5 # the links' peer exchanges
	(for i in $(seq 1 $((secs * 10))); do
		redis-cli -p "$n1" SET "lag:$i" v >/dev/null
		sleep 0.1
	done) &
	writer=$!
	sleep 5
	for _ in $(seq 1 $(((secs - 5) * 2))); do
		for port in "$n1" "$n2" "$n3"; do info "$port" gc_stable_lag_ms; done
		sleep 0.5
	done | sort -n | awk '{v[NR] = $1} END {
		printf "stable lag ms over %d readings: p50 %d, p90 %d, max %d\n", NR, v[int(NR / 2) + 1], v[int(NR * 0.9)], v[NR]
	}'
	kill "$writer" 2>/dev/null || true
	exit 0
fi

if [[ $mode == rounds ]]; then
	now_ms() { date +%s%3N; }
	pid_of() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
	ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
	hz=$(getconf CLK_TCK)
	declare -A pid=()
	for port in "$rp" "$n1" "$n2" "$n3"; do pid[$port]=$(pid_of "$port"); done
	printf '| round | server | written in s | DBSIZE 0 after s | DBSIZE | tombstones | RSS MiB | disk MiB (allocated / apparent) | stable lag ms | CPU s | log entries read (catch-ups) | pushes dropped (at streams) |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
	for r in $(seq 1 "$secs"); do
		awk -v r="$r" 'BEGIN {
			v = sprintf("%064d", 0)
			for (i = 0; i < 300000; i++) {
				k = "sess:" r ":" i
				printf "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$64\r\n%s\r\n$2\r\nEX\r\n$1\r\n1\r\n", length(k), k, v
			}
		}' >"$BENCH_TMP/round.resp"
		declare -A zero=() written=() end=() cpu0=() read0=() reads0=() drop0=() sdrop0=()
		for port in "$rp" "$n1" "$n2" "$n3"; do cpu0[$port]=$(ticks "${pid[$port]}"); done
		for port in "$n1" "$n2" "$n3"; do
			read0[$port]=$(info "$port" mesh_catchup_entries) reads0[$port]=$(info "$port" mesh_catchups_by_log)
			drop0[$port]=$(info "$port" mesh_push_dropped) sdrop0[$port]=$(info "$port" mesh_push_dropped_stream)
		done
		t0=$(now_ms)
		pipes=()
		for port in "$n1" "$rp"; do
			(redis-cli -p "$port" --pipe <"$BENCH_TMP/round.resp" >/dev/null && now_ms >"$BENCH_TMP/written-$port") &
			pipes+=($!)
		done
		wait "${pipes[@]}"
		for port in "$n1" "$rp"; do
			end[$port]=$(cat "$BENCH_TMP/written-$port")
			written[$port]=$(printf '%.1f' "$(echo "(${end[$port]} - $t0) / 1000" | bc -l)")
		done
		end[$n2]=${end[$n1]} end[$n3]=${end[$n1]}
		mark=$((${end[$n1]} > ${end[$rp]} ? ${end[$n1]} + 12000 : ${end[$rp]} + 12000))
		while (($(now_ms) < mark)); do
			for port in "$rp" "$n1" "$n2" "$n3"; do
				if [[ -z ${zero[$port]:-} && $(redis-cli -p "$port" DBSIZE) == 0 ]]; then
					zero[$port]=$(printf '%.1f' "$(echo "($(now_ms) - ${end[$port]}) / 1000" | bc -l)")
				fi
			done
			sleep 0.25
		done
		for port in "$rp" "$n1" "$n2" "$n3"; do
			dir="$BENCH_TMP/redmesh-$port" name=redmesh-$((port - rp)) tomb=- lag=- read=- drop=-
			if [[ $port == "$rp" ]]; then
				dir="$BENCH_TMP/redis-$rp" name=redis-server
			else
				tomb=$(info "$port" gc_tombstones) lag=$(info "$port" gc_stable_lag_ms)
				read="$(($(info "$port" mesh_catchup_entries) - ${read0[$port]})) ($(($(info "$port" mesh_catchups_by_log) - ${reads0[$port]})))"
				drop=$(($(info "$port" mesh_push_dropped) - ${drop0[$port]}))
				# A build without the stream's count leaves it out.
				[[ -n ${sdrop0[$port]} ]] && drop+=" ($(($(info "$port" mesh_push_dropped_stream) - ${sdrop0[$port]})))"
			fi
			printf '| %d | %s | %s | %s | %s | %s | %.0f | %s | %s | %.1f | %s | %s |\n' "$r" "$name" "${written[$port]:--}" "${zero[$port]:-> 12}" \
				"$(redis-cli -p "$port" DBSIZE)" "$tomb" "$(echo "$(rss_kb "$port") / 1024" | bc -l)" "$(disk_mb "$dir")" "$lag" \
				"$(echo "($(ticks "${pid[$port]}") - ${cpu0[$port]}) / $hz" | bc -l)" "$read" "$drop"
		done
		echo "round $r done, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
		unset zero written end cpu0 read0 reads0 drop0 sdrop0
	done
	exit 0
fi

printf '| s | server | DBSIZE | tombstones | RSS MiB | disk MiB (allocated / apparent) | stable lag ms |\n|---:|---|---:|---:|---:|---:|---:|\n'
start=$(date +%s%N)
for s in $(seq 0 $((secs - 1))); do
	chunk "$s" >"$BENCH_TMP/chunk.resp"
	redis-cli -p "$n1" --pipe <"$BENCH_TMP/chunk.resp" >/dev/null
	redis-cli -p "$rp" --pipe <"$BENCH_TMP/chunk.resp" >/dev/null
	if (((s + 1) % step == 0)); then row $((s + 1)); fi
	# Hold the rate: the next chunk starts a second after this one did.
	next=$((start + (s + 1) * 1000000000))
	wait_ns=$((next - $(date +%s%N)))
	((wait_ns > 0)) && sleep "$(echo "$wait_ns / 1000000000" | bc -l)"
done
sleep 15
row $((secs + 15))
