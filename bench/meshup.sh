#!/usr/bin/env bash
# Time to a full mesh: NODES redmesh nodes started together, as
# bench/propagation.sh starts them (a pre-shared key, every node after the
# first given the first with --peer, fresh data directories), from the
# launch of the first until every node lists NODES-1 connected peers; beside
# Redis, a master and NODES-1 replicas (--replicaof) started together until
# every replica's link is up (its first sync done, with
# --repl-diskless-sync-delay 0: else the master waits 5 s for more replicas
# to sync at once). STARTS starts a round, ROUNDS rounds (default 3, 10, 3);
# prints each round's median and max, then the median of the rounds'
# medians, the longest start and the ratio to Redis. A start that has not
# formed within 60 s is counted as 60 s and reported.
#
# BASE names another redmesh binary to time in the same rounds (say the
# parent commit's); REDMESH one to time instead of this tree's. PORT (default
# 16600) is the first port: RESP on PORT+1.., the mesh on PORT+21..
#
# Usage: [BASE=path/to/redmesh] [PORT=16600] bench/meshup.sh [ROUNDS] [STARTS] [NODES]
source "$(dirname "$0")/lib.sh"
rounds=${1:-3}
starts=${2:-10}
nodes=${3:-3}
port=${PORT:-16600}
base=${BASE:-}
if [[ -n ${REDMESH:-} ]]; then cp "$REDMESH" "$BENCH_TMP/redmesh"; else build_redmesh; fi
"$BENCH_TMP/redmesh" keygen "$BENCH_TMP/mesh.key" >/dev/null
timeouts=0

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# field PORT NAME prints NAME from INFO replication of the server on PORT.
field() { redis-cli -p "$1" INFO replication 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }

# formed KIND: every node linked (redmesh) or every replica up (redis).
formed() {
	local i
	for i in $(seq 1 "$nodes"); do
		if [[ $1 == redis ]]; then
			((i == 1)) || [[ $(field $((port + i)) master_link_status) == up ]] || return 1
		else
			[[ $(field $((port + i)) mesh_connected_peers) == $((nodes - 1)) ]] || return 1
		fi
	done
}

# start_once KIND [BINARY]: starts the servers together, prints the
# milliseconds until formed, stops them.
start_once() {
	local kind=$1 bin=${2:-} i dir first="" pids=() t0 ms
	for i in $(seq 1 "$nodes"); do rm -rf "$BENCH_TMP/n-$i" "$BENCH_TMP/n-$i.log"; done
	[[ $kind == redis ]] || first=$("$bin" id --data "$BENCH_TMP/n-1")
	t0=$(now_ms)
	for i in $(seq 1 "$nodes"); do
		dir="$BENCH_TMP/n-$i"
		if [[ $kind == redis ]]; then
			local args=(--port $((port + i)) --bind 127.0.0.1 --save "" --appendonly no --repl-diskless-sync-delay 0)
			((i > 1)) && args+=(--replicaof 127.0.0.1 $((port + 1)))
			mkdir -p "$dir"
			redis-server "${args[@]}" --dir "$dir" >"$dir.log" 2>&1 &
		else
			local args=(serve --data "$dir" --listen "127.0.0.1:$((port + i))" --fsync everysec --log-level warn
				--psk-file "$BENCH_TMP/mesh.key" --p2p-listen "/ip4/127.0.0.1/tcp/$((port + 20 + i))")
			((i > 1)) && args+=(--peer "/ip4/127.0.0.1/tcp/$((port + 21))/p2p/$first")
			"$bin" "${args[@]}" >"$dir.log" 2>&1 &
		fi
		pids+=($!)
		BENCH_PIDS+=($!)
	done
	until formed "$kind"; do
		if (($(now_ms) - t0 > 60000)); then
			echo "  $kind ${bin:+$bin }did not form within 60 s" >&2
			break
		fi
		sleep 0.02
	done
	ms=$(($(now_ms) - t0))
	((ms <= 60000)) || ms=60000
	for i in "${pids[@]}"; do kill "$i" 2>/dev/null || true; done
	for i in "${pids[@]}"; do wait "$i" 2>/dev/null || true; done
	echo "$ms"
}

maxof() { printf '%s\n' "$@" | sort -n | tail -1; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }

echo "## meshup ($rounds rounds of $starts starts, $nodes nodes; load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
kinds=(redis redmesh)
[[ -n $base ]] && kinds=(redis base redmesh)
declare -A med mx
for round in $(seq 1 "$rounds"); do
	declare -A got=()
	for _ in $(seq 1 "$starts"); do
		for k in "${kinds[@]}"; do
			case $k in
			redis) ms=$(start_once redis) ;;
			base) ms=$(start_once redmesh "$base") ;;
			redmesh) ms=$(start_once redmesh "$BENCH_TMP/redmesh") ;;
			esac
			((ms < 60000)) || timeouts=$((timeouts + 1))
			got[$k]+=" $ms"
		done
	done
	line="  round $round (ms, median / max):"
	for k in "${kinds[@]}"; do
		# shellcheck disable=SC2086
		m=$(printf '%s\n' ${got[$k]} | median) x=$(maxof ${got[$k]})
		med[$k]+=" $m" mx[$k]+=" $x"
		line+=" $k $m / $x;"
	done
	echo "$line load $(cut -d' ' -f1 /proc/loadavg)" >&2
	unset got
done

echo "Time to a full mesh, $nodes nodes started together ($rounds rounds of $starts starts; the median over the rounds of each round's median, and the longest start, ms; load $(cut -d' ' -f1-3 /proc/loadavg) at the end; $timeouts starts did not form within 60 s):"
echo
echo "| | median | max | median / Redis |"
echo "|---|---:|---:|---:|"
# shellcheck disable=SC2086
r=$(printf '%s\n' ${med[redis]} | median)
for k in "${kinds[@]}"; do
	# shellcheck disable=SC2086
	m=$(printf '%s\n' ${med[$k]} | median) x=$(maxof ${mx[$k]})
	echo "| $k | $m | $x | $(ratio "$m" "$r") |"
done
echo
echo "rounds (median / max):$(for k in "${kinds[@]}"; do echo -n " $k${med[$k]} /${mx[$k]};"; done)"
