#!/usr/bin/env bash
# The bridge: how long a change written straight to one site's Redis takes to
# be readable in another site's Redis, beside a Redis master→replica pair,
# and the load a bridge adds to its Redis.
#
# Three redis-servers (22200-22202), each beside its own node (redmesh serve
# --backend, RESP 22210-22212, mesh 22220-22222, a PSK mesh, fsync
# everysec); a Redis master (22230) with a replica (22231); a plain
# redis-server (22240) for the load without a bridge. RUNS times (default
# 3):
#  - latency: bench/proplat writes a fresh value to Redis #1 (or the master)
#    and polls GET on Redis #3 (or the replica) until it reads it, SAMPLES
#    times (default 1000) in sequence; p50 and p99;
#  - idle: over 10 s with no client writing, the commands Redis #1 processed
#    (INFO stats, less the INFO calls) and its CPU time (/proc);
#  - under load: bench/bridgeload writes 10,000 SETs a second (random keys
#    among 100,000, 100-byte values) for 10 s to Redis #1 and, apart, to the
#    plain redis-server; the commands Redis #1 processed beyond the load's
#    own (the bridge's), and each server's CPU time.
#
# Usage: [SAMPLES=N] bench/bridge.sh [RUNS]
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
samples=${SAMPLES:-1000}
hz=$(getconf CLK_TCK)
build_redmesh
(cd "$BENCH_ROOT" && go build -o "$BENCH_TMP/proplat" ./bench/proplat && go build -o "$BENCH_TMP/bridgeload" ./bench/bridgeload)
"$BENCH_TMP/redmesh" keygen "$BENCH_TMP/mesh.key" >/dev/null

pid_of() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
commands() { redis-cli -p "$1" INFO stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" {print $2}'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

for i in 0 1 2; do start_redis $((22200 + i)) --appendonly no; done
start_redis 22230 --appendonly no
start_redis 22231 --appendonly no --replicaof 127.0.0.1 22230
start_redis 22240 --appendonly no
node() {
	local i=$1 dir="$BENCH_TMP/node-$1"
	shift
	"$BENCH_TMP/redmesh" id --data "$dir" >"$dir.id"
	"$BENCH_TMP/redmesh" serve --data "$dir" --listen "127.0.0.1:$((22210 + i))" --fsync everysec --log-level warn \
		--psk-file "$BENCH_TMP/mesh.key" --p2p-listen "/ip4/127.0.0.1/tcp/$((22220 + i))" \
		--backend "redis://127.0.0.1:$((22200 + i))" "$@" >>"$dir.log" 2>&1 &
	BENCH_PIDS+=($!)
	wait_port $((22210 + i))
}
node 0
node 1 --peer "/ip4/127.0.0.1/tcp/22220/p2p/$(cat "$BENCH_TMP/node-0.id")"
node 2 --peer "/ip4/127.0.0.1/tcp/22220/p2p/$(cat "$BENCH_TMP/node-0.id")"
for _ in $(seq 1 200); do
	[[ $(redis-cli -p 22212 INFO replication | tr -d '\r' | awk -F: '$1 == "mesh_connected_peers" {print $2}') == 2 ]] && break
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

bl50=() bl99=() rl50=() rl99=() idle_cmds=() idle_cpu=() plain_idle_cpu=() load_cmds=() load_cpu=() plain_cpu=()
for run in $(seq 1 "$runs"); do
	read -r p50 p99 _ < <("$BENCH_TMP/proplat" -write 127.0.0.1:22200 -read 127.0.0.1:22202 -n "$samples")
	bl50+=("$p50") bl99+=("$p99")
	read -r p50 p99 _ < <("$BENCH_TMP/proplat" -write 127.0.0.1:22230 -read 127.0.0.1:22231 -n "$samples")
	rl50+=("$p50") rl99+=("$p99")
	sleep 2 # let the bridges settle
	read -r c ms < <(window 22200 10)
	idle_cmds+=($((c / 10))) idle_cpu+=("$ms")
	read -r c ms < <(window 22240 10)
	plain_idle_cpu+=("$ms")
	read -r c ms sent < <(window 22200 10 "$BENCH_TMP/bridgeload" -addr 127.0.0.1:22200 -rate 10000 -duration 10s)
	load_cmds+=($(((c - sent) / 10))) load_cpu+=("$ms")
	read -r c ms sent < <(window 22240 10 "$BENCH_TMP/bridgeload" -addr 127.0.0.1:22240 -rate 10000 -duration 10s)
	plain_cpu+=("$ms")
	echo "  run $run: bridge #1→#3 p50 ${bl50[-1]} µs p99 ${bl99[-1]} µs; replica p50 ${rl50[-1]} µs p99 ${rl99[-1]} µs;" \
		"idle: ${idle_cmds[-1]} cmds/s from the bridge, ${idle_cpu[-1]} ms CPU in 10 s (plain ${plain_idle_cpu[-1]});" \
		"10k SET/s: ${load_cmds[-1]} cmds/s from the bridge, ${load_cpu[-1]} ms CPU in 10 s (plain ${plain_cpu[-1]})" >&2
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
