# Shared helpers for the benchmark scripts: start Debian's redis-server and a
# redmesh node side by side on loopback, run redis-benchmark, take medians.
# Source it; it cleans up every server it started on exit.

set -euo pipefail
BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_TMP="$(mktemp -d /tmp/redmesh-bench.XXXXXX)"
BENCH_PIDS=()

bench_cleanup() {
	for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT

need() {
	command -v "$1" >/dev/null || { echo "bench: $1 not found (apt-get install redis-server redis-tools)" >&2; exit 1; }
}
need redis-server
need redis-benchmark
need redis-cli

# build_redmesh compiles the node once into BENCH_TMP.
build_redmesh() {
	(cd "$BENCH_ROOT" && go build -o "$BENCH_TMP/redmesh" ./cmd/redmesh)
}

wait_port() {
	for _ in $(seq 1 300); do
		redis-cli -p "$1" PING >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "bench: nothing answers on port $1" >&2
	exit 1
}

# wait_replication PORT TEXT [SECONDS]: waits until INFO replication on
# PORT shows TEXT (a link up, a count of peers), or gives up after SECONDS
# (60): a mesh or a replica that never links ends the run with the reason,
# not a wait without end.
wait_replication() {
	local deadline=$((SECONDS + ${3:-60}))
	until [[ $(redis-cli -p "$1" INFO replication 2>/dev/null) == *"$2"* ]]; do
		if ((SECONDS >= deadline)); then
			echo "bench: port $1 never showed $2 in INFO replication" >&2
			exit 1
		fi
		sleep 0.05
	done
}

# start_redis PORT ARGS... starts redis-server with a fresh directory.
start_redis() {
	local port=$1; shift
	local dir="$BENCH_TMP/redis-$port"
	rm -rf "$dir" && mkdir -p "$dir"
	redis-server --port "$port" --bind 127.0.0.1 --save '' --dir "$dir" "$@" >"$dir.log" 2>&1 &
	BENCH_PIDS+=($!)
	wait_port "$port"
}

# cold_program BIN drops BIN's pages from the page cache when
# BENCH_COLD_PROGRAM is set, so that the node starts as after a reboot,
# reading its program from disk. A program just written (built or copied)
# is cached in large folios, which the kernel maps whole: its resident
# code stays most of what it touched starting, however little of it the
# node runs later.
cold_program() {
	# Pages not yet written back stay cached: write them first.
	[[ -z ${BENCH_COLD_PROGRAM:-} ]] || { sync "$1" && dd if="$1" iflag=nocache count=0 status=none; }
}

# start_redmesh PORT ARGS... starts a node with a fresh data directory.
start_redmesh() {
	local port=$1; shift
	local dir="$BENCH_TMP/redmesh-$port"
	rm -rf "$dir"
	cold_program "$BENCH_TMP/redmesh"
	"$BENCH_TMP/redmesh" serve --data "$dir" --listen "127.0.0.1:$port" --log-level warn "$@" >"$dir.log" 2>&1 &
	BENCH_PIDS+=($!)
	wait_port "$port"
}

# disk_mb DIR prints what DIR holds on disk in MiB: the blocks allocated,
# then the files' apparent size. Badger preallocates its value-log and
# memtable files and fills them as it writes, so their apparent size counts
# up to 48 MiB the disk does not hold.
disk_mb() {
	printf '%s / %s' "$(du -sB1 "$1" | awk '{printf "%.1f", $1 / 1048576}')" "$(du -sb "$1" | awk '{printf "%.1f", $1 / 1048576}')"
}

# The ports of the compared servers (BENCH_REDIS_PORT, BENCH_REDMESH_PORT in
# the environment move them).
redis_port=${BENCH_REDIS_PORT:-16379}
redmesh_port=${BENCH_REDMESH_PORT:-16380}

# BENCH_BEFORE, if set, is the binary of another build of redmesh (built
# beforehand, say from the commit before a change): compare then runs it too,
# as a third server between Redis and this tree's build, and ratios adds its
# columns.
before_bin=${BENCH_BEFORE:-}

# start_compared redis|before|redmesh starts that server, fresh, as the
# comparisons with Redis run it (Redis with appendonly yes and appendfsync
# everysec, redmesh with --fsync everysec), and sets port to its port.
start_compared() {
	case $1 in
	redis)
		start_redis "$redis_port" --appendonly yes --appendfsync everysec
		port=$redis_port
		;;
	before)
		local dir="$BENCH_TMP/before-$redmesh_port"
		rm -rf "$dir"
		"$before_bin" serve --data "$dir" --listen "127.0.0.1:$redmesh_port" --log-level warn --fsync everysec >"$dir.log" 2>&1 &
		BENCH_PIDS+=($!)
		wait_port "$redmesh_port"
		port=$redmesh_port
		;;
	*)
		start_redmesh "$redmesh_port" --fsync everysec
		port=$redmesh_port
		;;
	esac
}

# compare RUNS MEASURE [SETUP] runs each test in tests at -P 1 and -P 16 on
# Redis, the build before (BENCH_BEFORE) if set, and redmesh in turn, each
# fresh (start_compared), RUNS times: SETUP PORT first if given, then
# MEASURE PORT TEST P for each, whose output is appended to R[TEST,P] for
# Redis, B[TEST,P] for the build before and M[TEST,P] for redmesh, each
# followed by a semicolon.
declare -A R B M
compare() {
	local runs=$1 measure=$2 setup=${3:-} run server P t v servers=(redis redmesh)
	[[ -z $before_bin ]] || servers=(redis before redmesh)
	for run in $(seq 1 "$runs"); do
		for server in "${servers[@]}"; do
			start_compared "$server"
			[[ -z $setup ]] || "$setup" "$port"
			for P in 1 16; do
				for t in "${tests[@]}"; do
					v=$("$measure" "$port" "$t" "$P")
					case $server in
					redis) R[$t,$P]+="$v;" ;;
					before) B[$t,$P]+="$v;" ;;
					*) M[$t,$P]+="$v;" ;;
					esac
				done
			done
			stop_port "$port"
		done
		echo "run $run done" >&2
	done
}

# ratios [LABEL] prints, for each test in tests at -P 1 and -P 16, the
# medians of its runs in R and M and their ratio (redmesh ÷ Redis) as a
# table, each row named by LABEL TEST if given, else by the test in
# capitals; the runs themselves go to stderr.
ratios() {
	local P t rm bm mm label
	if [[ -n $before_bin ]]; then
		printf '| command | -P | redis-server rps | before rps | redmesh rps | ratio before | ratio |\n|---|---:|---:|---:|---:|---:|---:|\n'
	else
		printf '| command | -P | redis-server rps | redmesh rps | ratio |\n|---|---:|---:|---:|---:|\n'
	fi
	for P in 1 16; do
		for t in "${tests[@]}"; do
			rm=$(tr ';' '\n' <<<"${R[$t,$P]}" | grep . | median)
			mm=$(tr ';' '\n' <<<"${M[$t,$P]}" | grep . | median)
			label=${t^^}
			if [[ -n ${1:-} ]]; then label=$("$1" "$t"); fi
			if [[ -n $before_bin ]]; then
				bm=$(tr ';' '\n' <<<"${B[$t,$P]}" | grep . | median)
				printf '| %s | %s | %s | %s | %s | %.2f | %.2f |\n' "$label" "$P" "$rm" "$bm" "$mm" \
					"$(echo "$bm / $rm" | bc -l)" "$(echo "$mm / $rm" | bc -l)"
				echo "  $t -P $P runs: redis ${R[$t,$P]//;/ }/ before ${B[$t,$P]//;/ }/ redmesh ${M[$t,$P]//;/ }" >&2
			else
				printf '| %s | %s | %s | %s | %.2f |\n' "$label" "$P" "$rm" "$mm" "$(echo "$mm / $rm" | bc -l)"
				echo "  $t -P $P runs: redis ${R[$t,$P]//;/ }/ redmesh ${M[$t,$P]//;/ }" >&2
			fi
		done
	done
}

# memory_header and memory_row LOAD: the memory table of lists.sh and
# types.sh. memory_row starts both servers as the comparisons run them,
# runs LOAD PORT against each, lets the node's memory settle (as
# redis-compare.sh does) and prints LOAD's row, 15 s after the load, or a
# row at each of MEM_AT's seconds after it ("15 60"); the servers stay up
# for the caller's reads, which stops them. Beside used_memory and VmRSS
# (Redis's and the node's) a row gives the node's RssAnon and RssFile
# (private memory; mapped file pages) and its Go heap: objects allocated
# (live, once a collection has swept), spans in use, free but resident,
# returned to the OS (INFO's go_heap_*); the ratios are the
# node's used_memory, VmRSS and RssAnon to Redis's used_memory, VmRSS and
# VmRSS.
memory_header() {
	printf '\n| dataset | redis-server used_memory / VmRSS (MiB) | redmesh used_memory / VmRSS / RssAnon / RssFile (MiB) | redmesh heap allocated / in use / idle / released (MiB) | ratio used_memory / VmRSS / RssAnon |\n|---|---:|---:|---:|---:|\n'
}
# empty is a load of nothing: the memory of a node holding one key.
empty() { redis-cli -p "$1" SET k v >/dev/null; }
# With BENCH_BEFORE, memory_row also starts that build on the next port
# (loaded after Redis, before this tree's node) and prints its row, named
# "(before)", beside this tree's.
memory_row() {
	local p ru at label slept=0 ports=("$redmesh_port") names=("")
	start_redis "$redis_port" --appendonly yes --appendfsync everysec
	if [[ -n $before_bin ]]; then
		local dir="$BENCH_TMP/before-$((redmesh_port + 1))"
		rm -rf "$dir"
		cold_program "$before_bin"
		"$before_bin" serve --data "$dir" --listen "127.0.0.1:$((redmesh_port + 1))" --log-level warn --fsync everysec >"$dir.log" 2>&1 &
		BENCH_PIDS+=($!)
		wait_port $((redmesh_port + 1))
		ports=($((redmesh_port + 1)) "$redmesh_port") names=(" (before)" "")
	fi
	start_redmesh "$redmesh_port" --fsync everysec
	for p in "$redis_port" "${ports[@]}"; do "$1" "$p"; done
	for at in ${MEM_AT:-15}; do
		sleep $((at - slept))
		slept=$at
		label=$1
		[[ -n ${MEM_AT:-} ]] && label="$1, $at s"
		ru=$(memory_info "$redis_port" used_memory)
		for p in "${!ports[@]}"; do memory_cells "$label${names[$p]}" "$ru" "${ports[$p]}"; done
	done
	[[ -z $before_bin ]] || stop_port $((redmesh_port + 1))
}
memory_info() { redis-cli -p "$1" INFO memory | tr -d '\r' | sed -n "s/^$2://p"; }
# memory_cells LABEL REDIS_USED PORT prints the row of the node on PORT.
memory_cells() {
	local rk mu mk ma mf ha hi hd hr
	mib() { echo "${1:-0}/$2" | bc -l; }
	rk=$(rss_kb "$redis_port") mu=$(memory_info "$3" used_memory)
	mk=$(rss_kb "$3") ma=$(rss_kb "$3" RssAnon) mf=$(rss_kb "$3" RssFile)
	ha=$(memory_info "$3" go_heap_alloc) hi=$(memory_info "$3" go_heap_inuse) hd=$(memory_info "$3" go_heap_idle) hr=$(memory_info "$3" go_heap_released)
	printf '| %s | %.1f / %.1f | %.1f / %.1f / %.1f / %.1f | %.1f / %.1f / %.1f / %.1f | %.2f / %.2f / %.2f |\n' "$1" \
		"$(mib "$2" 1048576)" "$(mib "$rk" 1024)" \
		"$(mib "$mu" 1048576)" "$(mib "$mk" 1024)" "$(mib "$ma" 1024)" "$(mib "$mf" 1024)" \
		"$(mib "$ha" 1048576)" "$(mib "$hi" 1048576)" "$(mib "$hd" 1048576)" "$(mib "$hr" 1048576)" \
		"$(echo "$mu/$2" | bc -l)" "$(echo "$mk/$rk" | bc -l)" "$(echo "$ma/$rk" | bc -l)"
}

# stop_port PORT stops whatever start_* started there.
stop_port() {
	local pid
	pid=$(ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
	redis-cli -p "$1" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
	[[ -n "$pid" ]] || return 0
	kill "$pid" 2>/dev/null || true
	# Wait for the exit: a node closing (and writing its checkpoint)
	# still holds its data directory.
	local state
	for _ in $(seq 1 600); do
		state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
		[[ -z "$state" || "$state" == Z ]] && return 0 # gone, or exited and not yet reaped
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null || true
}

# rps PORT ARGS... runs redis-benchmark and prints requests per second of the
# single test it is given.
rps() {
	local port=$1; shift
	redis-benchmark -p "$port" --csv "$@" 2>/dev/null | awk -F'"' 'NR==2 {print $4}'
}

# median of numbers on stdin.
median() {
	sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'
}

# rss_kb PORT [FIELD] prints the resident set size of the server on PORT, in
# KiB: VmRSS by default, or another field of /proc/PID/status (RssAnon:
# private memory; RssFile: mapped file pages, which the kernel can drop).
rss_kb() {
	local pid
	pid=$(ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
	awk -v f="${2:-VmRSS}:" '$1 == f {print $2}' "/proc/$pid/status"
}
