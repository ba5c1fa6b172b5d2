#!/usr/bin/env bash
# A new node joining: redmesh's bootstrap beside a Redis replica's full sync,
# in one run; prints a markdown table with medians (each run on stderr).
#
# A redmesh node and a Redis master each hold 1,000,000 keys (16-byte keys,
# 100-byte values, redis-cli --pipe). RUNS times (default 3), alternating:
#  - redmesh: a new node with an empty data directory is started with --peer
#    the loaded node; timed from its start until its mesh_merkle_root equals
#    the loaded node's (bench/meshwait rejoin), with its DBSIZE checked and
#    the bytes it received from the peer (INFO bytes_in) reported;
#  - Redis: a replica with an empty directory started with --replicaof the
#    master (repl-diskless-sync-delay 0, so it starts at once; the master's
#    default delay of 5 s is measured too, once per run); timed from its start
#    until master_link_status:up, master_sync_in_progress:0 and DBSIZE
#    1,000,000 (bench/meshwait replica).
# Both sides run as bench/mesh.sh runs them: fsync everysec, appendfsync
# everysec. Ports: the nodes' RESP on BENCH_BOOT_PORT + 1 and + 2 (default
# 36400), their mesh on BENCH_BOOT_MESH_PORT + 1 and + 2 (default 37400), the
# Redis master and replica on BENCH_BOOT_REDIS_PORT and the next (default
# 36391).
#
# With REJOIN_RUNS=N (default 0) it then measures a rejoin N times: the
# joined node, at rest for 10 s, is killed with kill -9, 10,000 random keys
# (1%) change on the loaded node, and the node is started again on its data
# directory, timed until its Merkle root equals the loaded node's, with the
# bytes it received from its peer per changed key; beside it a synced Redis
# replica (appendonly no) that saved its RDB (SAVE) is killed, the same
# changes are made on the master, and it is started again on its RDB, timed
# until its link is up, its sync done and its replication offset the
# master's. Each rejoin prints the node's start-up and sync log lines with
# the milliseconds since its process start.
#
# REDMESH names a binary built beforehand instead of this tree's.
#
# Usage: [REJOIN_RUNS=N] [REDMESH=path/to/redmesh] bench/bootstrap.sh [RUNS]
source "$(dirname "$0")/lib.sh"
runs=${1:-3}
keys=${KEYS:-1000000} # KEYS=... for a quick try only
resp_base=${BENCH_BOOT_PORT:-36400} mesh_base=${BENCH_BOOT_MESH_PORT:-37400}
redis_master=${BENCH_BOOT_REDIS_PORT:-36391} redis_replica=$((${BENCH_BOOT_REDIS_PORT:-36391} + 1))
if [[ -n ${REDMESH:-} ]]; then cp "$REDMESH" "$BENCH_TMP/redmesh"; else build_redmesh; fi
(cd "$BENCH_ROOT" && go build -o "$BENCH_TMP/meshwait" ./bench/meshwait)
"$BENCH_TMP/redmesh" keygen "$BENCH_TMP/mesh.key" >/dev/null

# resp_file OUT < indexes: SET key:%012d to a 100-byte value.
resp_file() {
	awk 'BEGIN { pad = sprintf("%87s", ""); gsub(/ /, "v", pad) }
		{ k = sprintf("key:%012d", $1); v = "v" sprintf("%012d", $1) pad
		  printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v }' >"$1"
}
seq 0 $((keys - 1)) | resp_file "$BENCH_TMP/load.resp"

# node I: RESP resp_base+I, mesh mesh_base+I.
node_start() {
	local i=$1 dir="$BENCH_TMP/node-$1"
	shift
	[[ -s "$dir.id" ]] || "$BENCH_TMP/redmesh" id --data "$dir" >"$dir.id"
	"$BENCH_TMP/redmesh" serve --data "$dir" --listen "127.0.0.1:$((resp_base + i))" --fsync everysec \
		--psk-file "$BENCH_TMP/mesh.key" --p2p-listen "/ip4/127.0.0.1/tcp/$((mesh_base + i))" "$@" >>"$dir.log" 2>&1 &
	BENCH_PIDS+=($!)
	NODE_PID=$!
}
maddr1() { echo "/ip4/127.0.0.1/tcp/$((mesh_base + 1))/p2p/$(cat "$BENCH_TMP/node-1.id")"; }

node_start 1
A=$NODE_PID
wait_port $((resp_base + 1))
redis-cli -p $((resp_base + 1)) --pipe <"$BENCH_TMP/load.resp" >/dev/null
echo "redmesh node loaded: dbsize $(redis-cli -p $((resp_base + 1)) DBSIZE)" >&2

start_redis $redis_master --appendonly yes --appendfsync everysec
redis-cli -p $redis_master --pipe <"$BENCH_TMP/load.resp" >/dev/null
echo "redis master loaded: dbsize $(redis-cli -p $redis_master DBSIZE)" >&2
sleep 5 # both at rest: the loads' compactions and checkpoints are over

replica() { # replica DELAY: prints ms until the fresh replica holds every key
	redis-cli -p $redis_master CONFIG SET repl-diskless-sync-delay "$1" >/dev/null
	rm -rf "$BENCH_TMP/replica" && mkdir -p "$BENCH_TMP/replica"
	local t0 rpid total
	t0=$(date +%s%N)
	redis-server --port $redis_replica --bind 127.0.0.1 --save '' --dir "$BENCH_TMP/replica" --appendonly yes \
		--appendfsync everysec --replicaof 127.0.0.1 $redis_master >"$BENCH_TMP/replica.log" 2>&1 &
	rpid=$!
	BENCH_PIDS+=($rpid)
	read -r total _ < <("$BENCH_TMP/meshwait" replica -node 127.0.0.1:$redis_replica -keys "$keys" -since "$t0" -interval 20ms)
	kill -9 "$rpid" && wait "$rpid" 2>/dev/null || true
	grep -q 'MASTER <-> REPLICA sync: Finished with success' "$BENCH_TMP/replica.log" ||
		{ echo "bench: the replica did not sync" >&2; exit 1; }
	sleep 1
	echo "$total"
}

rs=() rd=() ms=() mb=()
for run in $(seq 1 "$runs"); do
	rs+=("$(replica 0)")
	rd+=("$(replica 5)")

	rm -rf "$BENCH_TMP/node-2" "$BENCH_TMP/node-2.id"
	"$BENCH_TMP/redmesh" id --data "$BENCH_TMP/node-2" >"$BENCH_TMP/node-2.id"
	echo "--- run $run" >>"$BENCH_TMP/node-2.log"
	# A port of the nodes may be held for a moment by some connection's
	# ephemeral end: a node that could not listen is started again, and
	# timed from that start.
	for try in 1 2 3; do
		t0=$(date +%s%N)
		node_start 2 --peer "$(maddr1)"
		B=$NODE_PID
		until redis-cli -p $((resp_base + 2)) PING >/dev/null 2>&1 || ! kill -0 "$B" 2>/dev/null; do sleep 0.01; done
		kill -0 "$B" 2>/dev/null && break
		echo "  the new node did not start (try $try): $(tail -1 "$BENCH_TMP/node-2.log")" >&2
		sleep 1
	done
	read -r total _ < <("$BENCH_TMP/meshwait" rejoin -node 127.0.0.1:$((resp_base + 2)) -peers 127.0.0.1:$((resp_base + 1)) -since "$t0" -interval 20ms 2>/dev/null)
	size=$(redis-cli -p $((resp_base + 2)) DBSIZE)
	[[ $size == "$keys" ]] || { echo "bench: the new node holds $size keys" >&2; exit 1; }
	bytes=$(redis-cli -p $((resp_base + 2)) INFO replication | grep -o 'bytes_in=[0-9]*' | head -1 | cut -d= -f2)
	ms+=("$total") mb+=("$bytes")
	grep -E 'bootstrap (complete|progress)|snapshot' "$BENCH_TMP/node-2.log" | tail -2 | sed 's/^time=[^ ]* /    /' >&2 || true
	kill "$B" && wait "$B" 2>/dev/null || true
	echo "  run $run: redis replica ${rs[-1]} ms (delay 0), ${rd[-1]} ms (delay 5 s); redmesh join ${ms[-1]} ms, $((bytes / 1000000)) MB received" >&2
done
col() { printf '%s\n' "$@" | median; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }

# timeline T0 < LOG: the log lines after its last "--- rejoin" mark, each
# with the milliseconds from T0 (ns since the epoch) to its time.
timeline() {
	awk '/^--- rejoin/ { n = 0; next } { l[++n] = $0 } END { for (i = 1; i <= n; i++) print l[i] }' |
		grep -E 'store opened|keyspace loaded|merkle index|mesh listening|node started|peer connected|caught up|reconciled|bootstrapping' |
		while read -r line; do
			ts=${line#time=}
			ts=${ts%% *}
			printf '    %6d ms  %s\n' $((($(date -d "$ts" +%s%N) - $1) / 1000000)) "$(sed 's/^time=[^ ]* level=[A-Z]* //' <<<"$line" | cut -c1-150)"
		done
}

rejoin_runs=${REJOIN_RUNS:-0}
jt=() jb=() jr=()
if ((rejoin_runs > 0)); then
	echo "--- rejoin" >>"$BENCH_TMP/node-2.log"
	node_start 2 --peer "$(maddr1)" # the last run's node, on its data directory
	B=$NODE_PID
	"$BENCH_TMP/meshwait" rejoin -node 127.0.0.1:$((resp_base + 2)) -peers 127.0.0.1:$((resp_base + 1)) >/dev/null 2>&1
	for run in $(seq 1 "$rejoin_runs"); do
		sleep 10
		kill -9 "$B" && wait "$B" 2>/dev/null || true
		shuf -i 0-$((keys - 1)) -n $((keys / 100)) | awk -v r="$run" 'BEGIN { pad = sprintf("%87s", ""); gsub(/ /, "c", pad) }
			{ k = sprintf("key:%012d", $1); v = r sprintf("%012d", $1) pad
			  printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v }' >"$BENCH_TMP/change.resp"
		redis-cli -p $((resp_base + 1)) --pipe <"$BENCH_TMP/change.resp" >/dev/null
		echo "--- rejoin $run" >>"$BENCH_TMP/node-2.log"
		t0=$(date +%s%N)
		node_start 2 --peer "$(maddr1)"
		B=$NODE_PID
		read -r total _ < <("$BENCH_TMP/meshwait" rejoin -node 127.0.0.1:$((resp_base + 2)) -peers 127.0.0.1:$((resp_base + 1)) -since "$t0" -interval 20ms 2>/dev/null)
		sleep 2 # libp2p's byte counters catch up once a second
		timeline "$t0" <"$BENCH_TMP/node-2.log" >&2
		bytes=$(redis-cli -p $((resp_base + 2)) INFO replication | grep -o 'bytes_in=[0-9]*' | head -1 | cut -d= -f2)
		jt+=("$total") jb+=($((bytes / (keys / 100))))

		rm -rf "$BENCH_TMP/replica" && mkdir -p "$BENCH_TMP/replica"
		rargs=(--port $redis_replica --bind 127.0.0.1 --save '' --dir "$BENCH_TMP/replica" --appendonly no --replicaof 127.0.0.1 $redis_master)
		redis-server "${rargs[@]}" >"$BENCH_TMP/replica.log" 2>&1 &
		rpid=$!
		BENCH_PIDS+=($rpid)
		"$BENCH_TMP/meshwait" replica -node 127.0.0.1:$redis_replica -keys "$keys" >/dev/null
		redis-cli -p $redis_replica SAVE >/dev/null
		kill -9 "$rpid" && wait "$rpid" 2>/dev/null || true
		redis-cli -p $redis_master --pipe <"$BENCH_TMP/change.resp" >/dev/null
		t0=$(date +%s%N)
		redis-server "${rargs[@]}" >>"$BENCH_TMP/replica.log" 2>&1 &
		rpid=$!
		BENCH_PIDS+=($rpid)
		"$BENCH_TMP/meshwait" replica -node 127.0.0.1:$redis_replica -keys "$keys" -since "$t0" -interval 20ms >/dev/null
		want=$(redis-cli -p $redis_master INFO replication | grep -o 'master_repl_offset:[0-9]*' | cut -d: -f2)
		until [[ $(redis-cli -p $redis_replica INFO replication | grep -o 'master_repl_offset:[0-9]*' | cut -d: -f2) == "$want" ]]; do sleep 0.01; done
		jr+=($((($(date +%s%N) - t0) / 1000000)))
		kill -9 "$rpid" && wait "$rpid" 2>/dev/null || true
		echo "  rejoin $run: redmesh ${jt[-1]} ms, ${jb[-1]} bytes received per changed key; redis replica restarted on its RDB ${jr[-1]} ms ($(grep -c 'Full resync\|FULLRESYNC' "$BENCH_TMP/replica.log") full resyncs logged)" >&2
	done
	kill "$B" && wait "$B" 2>/dev/null || true
fi
kill "$A" && wait "$A" 2>/dev/null || true
rsm=$(col "${rs[@]}") rdm=$(col "${rd[@]}") msm=$(col "${ms[@]}") mbm=$(col "${mb[@]}")

cat <<TABLE
A new node joins a node holding $keys keys (100-byte values), from its process start until it holds them all ($runs runs; medians, ms):

| | median ms | runs | this / redmesh |
|---|---:|---|---:|
| Redis replica full sync (repl-diskless-sync-delay 0) | $rsm | ${rs[*]} | $(ratio "$rsm" "$msm") |
| Redis replica full sync (defaults: delay 5 s) | $rdm | ${rd[*]} | $(ratio "$rdm" "$msm") |
| redmesh: empty node to equal Merkle root | $msm | ${ms[*]} | 1.00 |

redmesh received $((${mbm%.*} / 1000000)) MB from its peer (median).
TABLE
((rejoin_runs > 0)) || exit 0
jtm=$(col "${jt[@]}") jbm=$(col "${jb[@]}") jrm=$(col "${jr[@]}")
cat <<TABLE

Rejoin after 1% of $keys keys changed, from the process start ($rejoin_runs runs; medians, ms):

| | median ms | runs | Redis / this |
|---|---:|---|---:|
| Redis replica restarted on its RDB | $jrm | ${jr[*]} | 1.00 |
| redmesh node restarted on its data directory | $jtm | ${jt[*]} | $(ratio "$jrm" "$jtm") |

redmesh received $jbm bytes from its peer per changed key (median; runs ${jb[*]}).
TABLE
