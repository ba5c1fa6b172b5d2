#!/usr/bin/env bash
# Propagation latency alone, on a mesh of NODES redmesh nodes (default 3),
# beside a Redis master -> replica pair, and optionally beside another build
# of redmesh, in one run; prints a markdown table of medians and ratios (each
# run's figures on stderr).
#
# Each run starts fresh servers and measures, one after the other: Redis
# (appendonly yes, appendfsync everysec), then BASE (if given: another
# redmesh binary, e.g. the parent commit's), then this tree's redmesh, each
# with bench/proplat (SET on the first server, GET polled on the second;
# SAMPLES samples after 200 warm-up ones). The redmesh nodes run --fsync
# everysec in a PSK mesh; every node after the first joins the first, and
# the run starts once the second lists NODES-1 connected peers. PORT (default
# 16500) is the first of the ports used: RESP on PORT+1.., the mesh on
# PORT+11.., Redis on PORT+21 and PORT+22.
#
# REDMESH and PROPLAT name binaries built beforehand instead of this tree's.
#
# Usage: [BASE=path/to/redmesh] [PORT=16500] bench/propagation.sh [RUNS] [SAMPLES] [NODES]
source "$(dirname "$0")/lib.sh"
runs=${1:-5}
samples=${2:-2000}
nodes=${3:-3}
port=${PORT:-16500}
base=${BASE:-}
if [[ -n ${REDMESH:-} ]]; then cp "$REDMESH" "$BENCH_TMP/redmesh"; else build_redmesh; fi
if [[ -n ${PROPLAT:-} ]]; then
	cp "$PROPLAT" "$BENCH_TMP/proplat"
else
	(cd "$BENCH_ROOT" && go build -o "$BENCH_TMP/proplat" ./bench/proplat)
fi
"$BENCH_TMP/redmesh" keygen "$BENCH_TMP/mesh.key" >/dev/null
pids=()

# mesh BINARY: starts a fresh mesh of $nodes nodes of BINARY and waits until
# the second node has every link.
mesh() {
	local bin=$1 i dir first=""
	pids=()
	for i in $(seq 1 "$nodes"); do
		dir="$BENCH_TMP/node-$i"
		rm -rf "$dir" "$dir.log"
		local args=(serve --data "$dir" --listen "127.0.0.1:$((port + i))" --fsync everysec --log-level warn
			--psk-file "$BENCH_TMP/mesh.key" --p2p-listen "/ip4/127.0.0.1/tcp/$((port + 10 + i))")
		((i == 1)) && first=$("$bin" id --data "$dir")
		((i > 1)) && args+=(--peer "/ip4/127.0.0.1/tcp/$((port + 11))/p2p/$first")
		"$bin" "${args[@]}" >>"$dir.log" 2>&1 &
		pids+=($!)
		BENCH_PIDS+=($!)
	done
	for i in $(seq 1 "$nodes"); do wait_port $((port + i)); done
	wait_replication $((port + 2)) "connected_peers:$((nodes - 1))"
}

unmesh() {
	local pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}

measure() { "$BENCH_TMP/proplat" -write "127.0.0.1:$1" -read "127.0.0.1:$2" -n "$samples"; }

col() { printf '%s\n' "$@" | median; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }

echo "## propagation ($runs runs of $samples samples, $nodes redmesh nodes; load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
rp50=() rp99=() bp50=() bp99=() mp50=() mp99=()
for run in $(seq 1 "$runs"); do
	start_redis $((port + 21)) --appendonly yes --appendfsync everysec
	start_redis $((port + 22)) --appendonly yes --appendfsync everysec --replicaof 127.0.0.1 $((port + 21))
	wait_replication $((port + 22)) master_link_status:up
	read -r p50 p99 _ < <(measure $((port + 21)) $((port + 22)))
	rp50+=("$p50") rp99+=("$p99")
	stop_port $((port + 22))
	stop_port $((port + 21))
	line="  run $run: redis p50 ${rp50[-1]} p99 ${rp99[-1]}"
	if [[ -n "$base" ]]; then
		mesh "$base"
		read -r p50 p99 _ < <(measure $((port + 1)) $((port + 2)))
		bp50+=("$p50") bp99+=("$p99")
		unmesh
		line+=" / base p50 ${bp50[-1]} p99 ${bp99[-1]}"
	fi
	mesh "$BENCH_TMP/redmesh"
	read -r p50 p99 _ < <(measure $((port + 1)) $((port + 2)))
	mp50+=("$p50") mp99+=("$p99")
	unmesh
	echo "$line / redmesh p50 ${mp50[-1]} p99 ${mp99[-1]} (us; load $(cut -d' ' -f1 /proc/loadavg))" >&2
done
r50=$(col "${rp50[@]}") r99=$(col "${rp99[@]}") m50=$(col "${mp50[@]}") m99=$(col "${mp99[@]}")

echo "Propagation, SET on one server to visible on another ($runs runs of $samples samples, $nodes redmesh nodes; medians of the runs' percentiles, µs; load $(cut -d' ' -f1-3 /proc/loadavg) at the end):"
echo
if [[ -n "$base" ]]; then
	b50=$(col "${bp50[@]}") b99=$(col "${bp99[@]}")
	echo "| | Redis master → replica | base | base / Redis | redmesh | redmesh / Redis |"
	echo "|---|---:|---:|---:|---:|---:|"
	echo "| p50 | $r50 | $b50 | $(ratio "$b50" "$r50") | $m50 | $(ratio "$m50" "$r50") |"
	echo "| p99 | $r99 | $b99 | $(ratio "$b99" "$r99") | $m99 | $(ratio "$m99" "$r99") |"
	echo
	echo "runs (p50/p99): Redis ${rp50[*]} / ${rp99[*]}; base ${bp50[*]} / ${bp99[*]}; redmesh ${mp50[*]} / ${mp99[*]}"
else
	echo "| | Redis master → replica | redmesh node → node | redmesh / Redis |"
	echo "|---|---:|---:|---:|"
	echo "| p50 | $r50 | $m50 | $(ratio "$m50" "$r50") |"
	echo "| p99 | $r99 | $m99 | $(ratio "$m99" "$r99") |"
	echo
	echo "runs (p50/p99): Redis ${rp50[*]} / ${rp99[*]}; redmesh ${mp50[*]} / ${mp99[*]}"
fi
