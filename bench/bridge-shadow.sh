#!/usr/bin/env bash
# The bridge's shadow (what it remembers per key of what its Redis holds)
# beside Redis's own memory for the same data.
#
# Redis: a redis-server (BASE, 22250 unless set) is filled with, in turn,
# 1,000,000 string keys of 100-byte values (DEBUG POPULATE), the same keys
# each with a deadline, 1,000,000 counters, 100 hashes of 10,000 fields of
# 100-byte values and 100 sets of 10,000 members; for each, used_memory less
# the empty server's, per key or element. The shadow: the bridge's
# BenchmarkShadowMemory, the same shapes remembered by the bridge (heap
# bytes per key or element).
#
# Usage: [BASE=PORT] bench/bridge-shadow.sh
source "$(dirname "$0")/lib.sh"
port=${BASE:-22250}
start_redis "$port" --appendonly no --enable-debug-command yes
used() { redis-cli -p "$port" INFO memory | tr -d '\r' | sed -n 's/^used_memory://p'; }
# per NAME COUNT CMD...: runs CMD against an empty server and prints NAME and
# the bytes it added per COUNT.
per() {
	local name=$1 count=$2 before after
	shift 2
	redis-cli -p "$port" FLUSHALL >/dev/null
	before=$(used)
	"$@" >/dev/null
	after=$(used)
	echo "$name $(((after - before) / count))"
}
fill() { redis-cli -p "$port" EVAL "$1" 0 >/dev/null; }
declare -A redis
while read -r name b; do redis[$name]=$b; done < <(
	per string 1000000 redis-cli -p "$port" DEBUG POPULATE 1000000 key 100
	per string-with-deadline 1000000 fill "for i = 0, 999999 do redis.call('SET', 'key:' .. i, string.rep('v', 100), 'PX', 3600000) end"
	per counter 1000000 fill "for i = 0, 999999 do redis.call('SET', 'key:' .. i, tostring(i)) end"
	per hash-field 1000000 fill "for h = 0, 99 do for f = 0, 9999 do redis.call('HSET', 'h:' .. h, 'field:' .. f, string.rep('v', 100)) end end"
	per set-member 1000000 fill "for h = 0, 99 do for f = 0, 9999 do redis.call('SADD', 's:' .. h, 'member:' .. f) end end"
)
bench=$(cd "$BENCH_ROOT" && go test -run '^$' -bench ShadowMemory -benchtime 1x ./bridge/ | grep '^BenchmarkShadowMemory')
echo "| per key or element | redis-server used_memory (B) | bridge shadow (B) |"
echo "|---|---:|---:|"
for name in string string-with-deadline counter hash-field set-member; do
	shadow=$(awk -v m="B/$name" '{ for (i = 1; i < NF; i++) if ($(i + 1) == m) print $i }' <<<"$bench")
	echo "| $name | ${redis[$name]} | $shadow |"
done
