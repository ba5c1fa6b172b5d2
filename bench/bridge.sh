#!/usr/bin/env bash
# The bridge: how long a change written straight to one site's Redis takes to
# be readable in another site's Redis, beside a Redis master→replica pair,
# and the load a bridge adds to its Redis.
#
# Three redis-servers (BASE to BASE+2, BASE 22200 unless set), each beside
# its own node (redmesh serve --backend, RESP BASE+10 to +12, mesh BASE+20
# to +22, a PSK mesh, fsync everysec); a Redis master (BASE+30) with a
# replica (BASE+31); a plain redis-server (BASE+40) for the load without a
# bridge. RUNS times (default 3):
#  - latency: bench/proplat writes a fresh value to Redis #1 (or the master)
#    and polls GET on Redis #3 (or the replica) until it reads it, SAMPLES
#    times (default 1000) in sequence; p50 and p99;
#  - idle: over 10 s with no client writing, the commands Redis #1 processed
#    (INFO stats, less the INFO calls) and its CPU time (/proc);
#  - under load: bench/bridgeload writes 10,000 SETs a second (random keys
#    among 100,000, 100-byte values) for 10 s to Redis #1 and, apart, to the
#    plain redis-server (also with keyspace notifications on, as a bridge
#    sets them, sent to a subscriber that only reads them); the commands
#    Redis #1 processed beyond the load's own (the bridge's), and each
#    server's CPU time;
#  - large keys: bridgeload writes 10,000 HSETs a second (random fields
#    among 2,000 of 20 hashes, 100-byte values) for 10 s to Redis #1; from
#    its start until Redis #3 holds Redis #1's hashes, the commands Redis #3
#    processed (its bridge's writes, and its reads of the changes that
#    reached it from #1), of them HGETALLs (reads of a whole hash), and its
#    CPU time; and from its start until a second after it ends, the
#    commands Redis #1 processed beyond the HSETs (its bridge's reads of the
#    changed hashes), of them HGETALLs, and its CPU time; beside the plain
#    redis-server's CPU under the same HSETs.
#
# Usage: [SAMPLES=N] [BASE=PORT] bench/bridge.sh [RUNS]
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
samples=${SAMPLES:-1000}
hz=$(getconf CLK_TCK)
base=${BASE:-22200}
build_redmesh
(cd "$BENCH_ROOT" && go build -o "$BENCH_TMP/proplat" ./bench/proplat && go build -o "$BENCH_TMP/bridgeload" ./bench/bridgeload)
"$BENCH_TMP/redmesh" keygen "$BENCH_TMP/mesh.key" >/dev/null

pid_of() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
commands() { redis-cli -p "$1" INFO stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" {print $2}'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

for i in 0 1 2; do start_redis $((base + i)) --appendonly no; done
start_redis $((base + 30)) --appendonly no
start_redis $((base + 31)) --appendonly no --replicaof 127.0.0.1 $((base + 30))
start_redis $((base + 40)) --appendonly no
node() {
	local i=$1 dir="$BENCH_TMP/node-$1"
	shift
	"$BENCH_TMP/redmesh" id --data "$dir" >"$dir.id"
	"$BENCH_TMP/redmesh" serve --data "$dir" --listen "127.0.0.1:$((base + 10 + i))" --fsync everysec --log-level warn \
		--psk-file "$BENCH_TMP/mesh.key" --p2p-listen "/ip4/127.0.0.1/tcp/$((base + 20 + i))" \
		--backend "redis://127.0.0.1:$((base + i))" "$@" >>"$dir.log" 2>&1 &
	BENCH_PIDS+=($!)
	wait_port $((base + 10 + i))
}
node 0
node 1 --peer "/ip4/127.0.0.1/tcp/$((base + 20))/p2p/$(cat "$BENCH_TMP/node-0.id")"
node 2 --peer "/ip4/127.0.0.1/tcp/$((base + 20))/p2p/$(cat "$BENCH_TMP/node-0.id")"
for _ in $(seq 1 200); do
	[[ $(redis-cli -p $((base + 12)) INFO replication | tr -d '\r' | awk -F: '$1 == "mesh_connected_peers" {print $2}') == 2 ]] && break
	sleep 0.1
done

# window PORT SECONDS [CMD...]: runs CMD (if any) and prints, over the window,
# "commands cpu_ms" of the redis-server on PORT, then CMD's output.
window() {
	local port=$1 secs=$2 pid c0 c1 t0 t1 out=""
	shift 2
	pid=$(pid_of "$port")
	c0=$(commands "$port"); t0=$(ticks "$pid")
	if (($#)); then out=$("$@"); else sleep "$secs"; fi
	c1=$(commands "$port"); t1=$(ticks "$pid")
	echo "$((c1 - c0 - 1)) $(((t1 - t0) * 1000 / hz)) $out"
}

# hashsum PORT: an order-free sum of the hload:* hashes' fields and values.
hashsum() {
	redis-cli -p "$1" EVAL "local s = 0
for i = 0, 19 do
  local f = redis.call('HGETALL', 'hload:' .. i)
  for j = 1, #f, 2 do s = (s + tonumber(string.sub(redis.sha1hex(f[j] .. '=' .. f[j + 1]), 1, 8), 16)) % 4294967296 end
end
return s" 0
}
hgetalls() { redis-cli -p "$1" INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_hgetall:calls=\([0-9]*\),.*/\1/p'; }

# window3 SECONDS CMD...: runs CMD and prints, from its start until Redis
# #3's hashes equal Redis #1's (at most 60 s more), "commands cpu_ms
# hgetalls seconds" of Redis #3 (hgetalls: HGETALLs, the bridge's reads of
# the whole hashes), then, from its start until a second after it ends,
# "commands cpu_ms hgetalls" of Redis #1 (commands less CMD's: the
# bridge's reads of the changed hashes), then CMD's output. The window's
# own reads (hashsum) are left out of the counts.
window3() {
	local pid pid1 c0 c1 t0 t1 h0 h1 d0 d1 u0 u1 g0 g1 out start polls=0
	shift
	pid=$(pid_of $((base + 2))) pid1=$(pid_of $base)
	c0=$(commands $((base + 2))); t0=$(ticks "$pid"); h0=$(hgetalls $((base + 2)))
	d0=$(commands $base); u0=$(ticks "$pid1"); g0=$(hgetalls $base)
	start=$(date +%s%N)
	out=$("$@")
	sleep 1
	d1=$(commands $base); u1=$(ticks "$pid1"); g1=$(hgetalls $base)
	for _ in $(seq 1 600); do
		polls=$((polls + 1))
		[[ $(hashsum $((base + 2))) == $(hashsum $base) ]] && break
		sleep 0.1
	done
	c1=$(commands $((base + 2))); t1=$(ticks "$pid"); h1=$(hgetalls $((base + 2)))
	echo "$((c1 - c0 - 2 - polls * 21)) $(((t1 - t0) * 1000 / hz)) $((h1 - h0 - polls * 20)) $((($(date +%s%N) - start) / 1000000))" \
		"$((d1 - d0 - 2 - out)) $(((u1 - u0) * 1000 / hz)) $((g1 - g0)) $out"
}

hashload=(-rate 10000 -duration 10s -hashes 20 -fields 2000)
bl50=() bl99=() rl50=() rl99=() idle_cmds=() idle_cpu=() plain_idle_cpu=() load_cmds=() load_cpu=() plain_cpu=() notify_cpu=()
hash_cmds=() hash_cpu=() hash_reads=() hash_took=() plain_hash_cpu=() read_cmds=() read_cpu=() read_whole=()
for run in $(seq 1 "$runs"); do
	read -r p50 p99 _ < <("$BENCH_TMP/proplat" -write 127.0.0.1:$base -read 127.0.0.1:$((base + 2)) -n "$samples")
	bl50+=("$p50") bl99+=("$p99")
	read -r p50 p99 _ < <("$BENCH_TMP/proplat" -write 127.0.0.1:$((base + 30)) -read 127.0.0.1:$((base + 31)) -n "$samples")
	rl50+=("$p50") rl99+=("$p99")
	sleep 2 # let the bridges settle
	read -r c ms < <(window $base 10)
	idle_cmds+=($((c / 10))) idle_cpu+=("$ms")
	read -r c ms < <(window $((base + 40)) 10)
	plain_idle_cpu+=("$ms")
	read -r c ms sent < <(window $base 10 "$BENCH_TMP/bridgeload" -addr 127.0.0.1:$base -rate 10000 -duration 10s)
	load_cmds+=($(((c - sent) / 10))) load_cpu+=("$ms")
	read -r c ms sent < <(window $((base + 40)) 10 "$BENCH_TMP/bridgeload" -addr 127.0.0.1:$((base + 40)) -rate 10000 -duration 10s)
	plain_cpu+=("$ms")
	# The notifications alone: the plain server sending them, as a bridged
	# one does, to a subscriber that only reads them.
	redis-cli -p $((base + 40)) CONFIG SET notify-keyspace-events Kg\$hszltdxe >/dev/null
	redis-cli -p $((base + 40)) PSUBSCRIBE '__keyspace@0__:*' >/dev/null &
	sub=$!
	sleep 0.5
	read -r c ms sent < <(window $((base + 40)) 10 "$BENCH_TMP/bridgeload" -addr 127.0.0.1:$((base + 40)) -rate 10000 -duration 10s)
	notify_cpu+=("$ms")
	kill "$sub"; wait "$sub" 2>/dev/null || true
	redis-cli -p $((base + 40)) CONFIG SET notify-keyspace-events '' >/dev/null
	sleep 2
	read -r c ms reads took c1 ms1 reads1 sent < <(window3 10 "$BENCH_TMP/bridgeload" -addr 127.0.0.1:$base "${hashload[@]}")
	hash_cmds+=("$c") hash_cpu+=("$ms") hash_reads+=("$reads") hash_took+=("$took")
	read_cmds+=("$c1") read_cpu+=("$ms1") read_whole+=("$reads1")
	read -r c ms sent < <(window $((base + 40)) 10 "$BENCH_TMP/bridgeload" -addr 127.0.0.1:$((base + 40)) "${hashload[@]}")
	plain_hash_cpu+=("$ms")
	echo "  run $run: bridge #1→#3 p50 ${bl50[-1]} µs p99 ${bl99[-1]} µs; replica p50 ${rl50[-1]} µs p99 ${rl99[-1]} µs;" \
		"idle: ${idle_cmds[-1]} cmds/s from the bridge, ${idle_cpu[-1]} ms CPU in 10 s (plain ${plain_idle_cpu[-1]});" \
		"10k SET/s: ${load_cmds[-1]} cmds/s from the bridge, ${load_cpu[-1]} ms CPU in 10 s (plain ${plain_cpu[-1]}, sending notifications ${notify_cpu[-1]});" \
		"10k HSET/s at #1: Redis #3 ${hash_cmds[-1]} commands from its bridge, ${hash_reads[-1]} HGETALLs, ${hash_cpu[-1]} ms CPU in ${hash_took[-1]} ms;" \
		"Redis #1 ${read_cmds[-1]} commands from its bridge, ${read_whole[-1]} HGETALLs, ${read_cpu[-1]} ms CPU in 11 s (plain, the HSETs themselves: ${plain_hash_cpu[-1]} in 10 s)" >&2
done
echo "| | p50 µs | p99 µs |"
echo "|---|---:|---:|"
echo "| bridge: Redis #1 → Redis #3 | $(median "${bl50[@]}") | $(median "${bl99[@]}") |"
echo "| Redis master → replica | $(median "${rl50[@]}") | $(median "${rl99[@]}") |"
echo
echo "| redis-server | commands/s from the bridge | CPU ms in 10 s |"
echo "|---|---:|---:|"
echo "| idle, with a bridge | $(median "${idle_cmds[@]}") | $(median "${idle_cpu[@]}") |"
echo "| idle, without | 0 | $(median "${plain_idle_cpu[@]}") |"
echo "| 10,000 SET/s, with a bridge | $(median "${load_cmds[@]}") | $(median "${load_cpu[@]}") |"
echo "| 10,000 SET/s, without | 0 | $(median "${plain_cpu[@]}") |"
echo "| 10,000 SET/s, without, sending keyspace notifications to a subscriber | 0 | $(median "${notify_cpu[@]}") |"
echo
echo "| 10,000 HSET/s of 20 hashes of 2,000 fields | commands | HGETALLs | CPU ms |"
echo "|---|---:|---:|---:|"
echo "| Redis #3, written by its bridge, until it holds #1's hashes | $(median "${hash_cmds[@]}") | $(median "${hash_reads[@]}") | $(median "${hash_cpu[@]}") |"
echo "| Redis #1, taking the HSETs and read by its bridge (11 s) | $(median "${read_cmds[@]}") | $(median "${read_whole[@]}") | $(median "${read_cpu[@]}") |"
echo "| a plain redis-server taking the HSETs (10 s) | 100,000 | 0 | $(median "${plain_hash_cpu[@]}") |"
