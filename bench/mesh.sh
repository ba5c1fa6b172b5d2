#!/usr/bin/env bash
# Mesh propagation and rejoin, beside Redis replication, in one run; prints
# markdown tables with medians and ratios (each run's figures on stderr).
#
# 1. Propagation latency: SET a fresh value on one server, poll GET on another
#    until it is visible (bench/proplat: one writer and one reader connection,
#    sequential, SAMPLES samples after 200 warm-up ones). Two redmesh nodes in
#    a PSK mesh (--fsync everysec) and a Redis master -> replica pair
#    (appendonly yes, appendfsync everysec), fresh servers each run,
#    alternating; RUNS runs (default 5); medians of each run's p50 and p99.
# 2. Rejoin: load 1,000,000 keys (16-byte keys, 100-byte values, redis-cli
#    --pipe) into a mesh of NODES redmesh nodes (default 3) and let it converge
#    (equal Merkle roots); then REJOIN_RUNS times (default 3), each from a
#    mesh at rest (SETTLE seconds, default 10, after it last converged: the
#    load's compactions end, and nodes write their checkpoints and agree
#    on log cursors, as a mesh in service would have): kill -9 the last
#    node, change 10,000 random keys (1%) on the first, restart the killed node
#    with its data directory and flags, and time from its start until its
#    mesh_merkle_root equals the others' (INFO replication every 50 ms; its
#    catch-up counters are printed). Beside it: a Redis master with the same
#    1,000,000 keys and a fresh replica (empty directory) started with
#    --replicaof, timed from its start until master_link_status:up,
#    master_sync_in_progress:0 and DBSIZE 1,000,000; with Debian's defaults
#    (diskless sync, repl-diskless-sync-delay 5) and with
#    repl-diskless-sync-delay 0.
#
# Usage: bench/mesh.sh [RUNS] [REJOIN_RUNS] [NODES] [SAMPLES]
source "$(dirname "$0")/lib.sh"
runs=${1:-5}
rejoin_runs=${2:-3}
nodes=${3:-3}
samples=${4:-2000}
keys=${KEYS:-1000000} # KEYS=... for a quick try only
settle=${SETTLE:-10}
build_redmesh
(cd "$BENCH_ROOT" && go build -o "$BENCH_TMP/proplat" ./bench/proplat && go build -o "$BENCH_TMP/meshwait" ./bench/meshwait)
"$BENCH_TMP/redmesh" keygen "$BENCH_TMP/mesh.key" >/dev/null
declare -A NODE_PID

# mesh_start I [--fresh]: node I listens for RESP on 16400+I and for the mesh
# on 127.0.0.1:26400+I; nodes after the first join the first. Keeps the data
# directory unless --fresh.
mesh_start() {
	local i=$1 dir="$BENCH_TMP/mesh-$1"
	[[ "${2:-}" == --fresh ]] && rm -rf "$dir" "$dir.log" "$dir.id"
	local args=(serve --data "$dir" --listen "127.0.0.1:$((16400 + i))" --fsync everysec
		--psk-file "$BENCH_TMP/mesh.key" --p2p-listen "/ip4/127.0.0.1/tcp/$((26400 + i))")
	# The peer ID is read before the node starts (the data directory is locked
	# while it runs).
	[[ -s "$dir.id" ]] || "$BENCH_TMP/redmesh" id --data "$dir" >"$dir.id"
	((i > 1)) && args+=(--peer "/ip4/127.0.0.1/tcp/26401/p2p/$(cat "$BENCH_TMP/mesh-1.id")")
	"$BENCH_TMP/redmesh" "${args[@]}" >>"$dir.log" 2>&1 &
	NODE_PID[$i]=$!
	BENCH_PIDS+=($!)
}

# mesh_kill I [SIGNAL]: stops node I and waits until it has exited.
mesh_kill() {
	local pid=${NODE_PID[$1]}
	kill "-${2:-TERM}" "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

addrs() { local s="" i; for i in "$@"; do s+="${s:+,}127.0.0.1:$((16400 + i))"; done; echo "$s"; }

# resp_file FIRST_CHAR OUT < indexes: SET key:%012d to a 100-byte value.
resp_file() {
	awk -v c="$1" 'BEGIN { pad = sprintf("%87s", ""); gsub(/ /, c, pad) }
		{ k = sprintf("key:%012d", $1); v = c sprintf("%012d", $1) pad
		  printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v }' >"$2"
}

pipe_load() { redis-cli -p "$1" --pipe <"$2" >/dev/null; }

col() { printf '%s\n' "$@" | median; }

ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }

echo "## propagation ($runs runs of $samples samples)" >&2
rp50=() rp99=() mp50=() mp99=()
for run in $(seq 1 "$runs"); do
	start_redis 16391 --appendonly yes --appendfsync everysec
	start_redis 16392 --appendonly yes --appendfsync everysec --replicaof 127.0.0.1 16391
	wait_replication 16392 master_link_status:up
	read -r p50 p99 _ < <("$BENCH_TMP/proplat" -write 127.0.0.1:16391 -read 127.0.0.1:16392 -n "$samples")
	rp50+=("$p50") rp99+=("$p99")
	stop_port 16392
	stop_port 16391

	mesh_start 1 --fresh
	mesh_start 2 --fresh
	wait_port 16401 && wait_port 16402
	# Connected when the second node lists the first as a connected peer.
	wait_replication 16402 connected=1
	read -r p50 p99 _ < <("$BENCH_TMP/proplat" -write 127.0.0.1:16401 -read 127.0.0.1:16402 -n "$samples")
	mp50+=("$p50") mp99+=("$p99")
	mesh_kill 2
	mesh_kill 1
	echo "  run $run: redis p50 ${rp50[-1]} p99 ${rp99[-1]} / redmesh p50 ${mp50[-1]} p99 ${mp99[-1]} (us)" >&2
done
r50=$(col "${rp50[@]}") r99=$(col "${rp99[@]}") m50=$(col "${mp50[@]}") m99=$(col "${mp99[@]}")

echo "## rejoin ($nodes redmesh nodes, $rejoin_runs runs)" >&2
seq 0 $((keys - 1)) | resp_file v "$BENCH_TMP/load.resp"

t0=$(date +%s%N)
start_redis 16391 --appendonly yes --appendfsync everysec
pipe_load 16391 "$BENCH_TMP/load.resp"
echo "  redis master loaded in $((($(date +%s%N) - t0) / 1000000)) ms, dbsize $(redis-cli -p 16391 DBSIZE)" >&2
rd=() r0=()
for run in $(seq 1 "$rejoin_runs"); do
	for delay in 5 0; do
		rm -rf "$BENCH_TMP/replica" && mkdir -p "$BENCH_TMP/replica"
		t0=$(date +%s%N)
		redis-server --port 16392 --bind 127.0.0.1 --save '' --dir "$BENCH_TMP/replica" --appendonly yes \
			--appendfsync everysec --replicaof 127.0.0.1 16391 >"$BENCH_TMP/replica.log" 2>&1 &
		rpid=$!
		BENCH_PIDS+=($rpid)
		read -r total _ < <("$BENCH_TMP/meshwait" replica -node 127.0.0.1:16392 -keys "$keys" -since "$t0")
		if ((delay == 5)); then rd+=("$total"); else r0+=("$total"); fi
		kill -9 "$rpid" && wait "$rpid" 2>/dev/null || true
		grep -q 'MASTER <-> REPLICA sync: Finished with success' "$BENCH_TMP/replica.log" ||
			{ echo "bench: the replica did not sync" >&2; exit 1; }
		# The next sync must be a full one from a master with no replica waiting.
		redis-cli -p 16391 CONFIG SET repl-diskless-sync-delay "$((5 - delay))" >/dev/null
		sleep 1
	done
	echo "  run $run: redis full resync ${rd[-1]} ms (diskless delay 5 s), ${r0[-1]} ms (delay 0)" >&2
done
stop_port 16391

t0=$(date +%s%N)
for i in $(seq 1 "$nodes"); do mesh_start "$i" --fresh; done
for i in $(seq 1 "$nodes"); do wait_port $((16400 + i)); done
pipe_load 16401 "$BENCH_TMP/load.resp"
t1=$(date +%s%N)
"$BENCH_TMP/meshwait" equal -nodes "$(addrs $(seq 1 "$nodes"))" -interval 200ms >/dev/null
echo "  mesh loaded in $(((t1 - t0) / 1000000)) ms, converged $((($(date +%s%N) - t1) / 1000000)) ms later; dbsize $(for i in $(seq 1 "$nodes"); do redis-cli -p $((16400 + i)) DBSIZE; done | xargs)" >&2

last=$nodes others=$(addrs $(seq 1 $((nodes - 1))))
mt=() mr=() ma=()
for run in $(seq 1 "$rejoin_runs"); do
	sleep "$settle"
	mesh_kill "$last" KILL
	shuf -i 0-$((keys - 1)) -n $((keys / 100)) | resp_file "$run" "$BENCH_TMP/change.resp"
	pipe_load 16401 "$BENCH_TMP/change.resp"
	"$BENCH_TMP/meshwait" equal -nodes "$others" >/dev/null
	echo "--- restart $run" >>"$BENCH_TMP/mesh-$last.log"
	t0=$(date +%s%N)
	mesh_start "$last"
	read -r total resp < <("$BENCH_TMP/meshwait" rejoin -node "$(addrs "$last")" -peers "$others" -since "$t0")
	mt+=("$total") mr+=("$resp") ma+=($((total - resp)))
	sed -n "/^--- restart $run\$/,\$p" "$BENCH_TMP/mesh-$last.log" |
		grep -E 'merkle index rebuilt|catch|Merkle|cursor' | sed 's/^time=[^ ]* /    /' | head -8 >&2 || true
	echo "  run $run: redmesh rejoin ${mt[-1]} ms (answering after ${mr[-1]} ms)" >&2
done
for i in $(seq 1 "$nodes"); do mesh_kill "$i"; done
rdm=$(col "${rd[@]}") r0m=$(col "${r0[@]}") mtm=$(col "${mt[@]}") mrm=$(col "${mr[@]}") mam=$(col "${ma[@]}")

cat <<TABLES
Propagation, SET on one server to visible on another ($runs runs of $samples samples; medians of the runs' percentiles, µs):

| | Redis master → replica | redmesh node → node | redmesh / Redis |
|---|---:|---:|---:|
| p50 | $r50 | $m50 | $(ratio "$m50" "$r50") |
| p99 | $r99 | $m99 | $(ratio "$m99" "$r99") |

Rejoin after 1% of $keys keys changed ($nodes-node mesh, $rejoin_runs runs, each after $settle s at rest; medians, ms):

| | median ms | runs | Redis (defaults) / this |
|---|---:|---|---:|
| Redis replica full resync (defaults: diskless, delay 5 s) | $rdm | ${rd[*]} | 1.00 |
| Redis replica full resync (repl-diskless-sync-delay 0) | $r0m | ${r0[*]} | $(ratio "$rdm" "$r0m") |
| redmesh rejoin: restart to equal Merkle roots | $mtm | ${mt[*]} | $(ratio "$rdm" "$mtm") |
| of which: restart to answering (opening 1M keys) | $mrm | ${mr[*]} | |
| of which: answering to equal roots | $mam | ${ma[*]} | |
TABLES
