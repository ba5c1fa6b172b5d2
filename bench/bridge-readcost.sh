#!/usr/bin/env bash
# What a bridge's Redis spends to learn what changed in one large key: a
# keyspace notification names the key and the command (hset, sadd ...), not
# the field, so the change is found by reading the key whole, or by hashing
# it inside Redis (a script, as the audit's digest does) and reading only
# the part whose hash moved. Per way, Redis's own time a call (INFO
# commandstats usec_per_call, scripts' inner commands included) and the
# reply's bytes, for a hash of 10,000 fields of 100-byte values, a set of
# 10,000 members and a list of 10,000 elements.
#
# Ways: HGETALL / SMEMBERS / LRANGE 0 -1 (the bridge's read), the read
# script (the same, with TYPE and PEXPIRETIME), the digest script (the
# audit's: a SHA-1 an element, the cheapest per-element hash a script has),
# a whole HSCAN/SSCAN walk of COUNT 1000, HLEN/SCARD/LLEN, and the window
# at a list's end a list told of pushes and pops only is read by.
#
# Usage: [BASE=PORT] [CALLS=N] bench/bridge-readcost.sh
source "$(dirname "$0")/lib.sh"
port=${BASE:-26260}
calls=${CALLS:-50}
start_redis "$port" --appendonly no
cli() { redis-cli -p "$port" "$@"; }
cli EVAL "for f = 0, 9999 do redis.call('HSET', 'h', 'field:' .. f, string.rep('v', 100)) end
for f = 0, 9999 do redis.call('SADD', 's', 'member:' .. f) end
for f = 0, 9999 do redis.call('RPUSH', 'l', string.rep('e', 20) .. f) end" 0 >/dev/null
# The scripts as the bridge loads them (bridge/scripts.go), taken from the
# test binary so they are the ones this commit has.
(cd "$BENCH_ROOT" && go test -count=1 -run "^TestPrintScripts$" ./bridge/ -args -print-scripts "$BENCH_TMP" >/dev/null)
read_sha=$(cli SCRIPT LOAD "$(cat "$BENCH_TMP/read.lua")")
digest_sha=$(cli SCRIPT LOAD "$(cat "$BENCH_TMP/digest.lua")")
usec() { cli INFO commandstats | tr -d '\r' | sed -n "s/^cmdstat_$1:.*usec_per_call=\([0-9.]*\).*/\1/p"; }
# way NAME STAT CMD...: runs CMD CALLS times, prints Redis's µs a call (of
# command STAT) and the reply's bytes.
way() {
	local name=$1 stat=$2
	shift 2
	cli CONFIG RESETSTAT >/dev/null
	for _ in $(seq "$calls"); do cli "$@" >/dev/null; done
	local bytes
	bytes=$(cli --no-raw "$@" | wc -c)
	printf '| %s | %s | %s |\n' "$name" "$(usec "$stat")" "$bytes"
}
walk() { # a whole xSCAN walk, COUNT 1000, as one "call"
	local cmd=$1 key=$2 cursor=0
	while :; do
		cursor=$(cli "$cmd" "$key" "$cursor" COUNT 1000 | sed -n 1p)
		[[ $cursor == 0 ]] && break
	done
}
echo "| way | µs a call in Redis | reply bytes |"
echo "|---|---:|---:|"
for t in "h HGETALL hgetall HSCAN hscan HLEN hlen" "s SMEMBERS smembers SSCAN sscan SCARD scard" "l LRANGE lrange - - LLEN llen"; do
	read -r key whole wstat scan sstat len lstat <<<"$t"
	if [[ $whole == LRANGE ]]; then way "$key: LRANGE 0 -1" lrange LRANGE "$key" 0 -1; else way "$key: $whole" "$wstat" "$whole" "$key"; fi
	way "$key: read script" evalsha EVALSHA "$read_sha" 1 "$key"
	way "$key: digest script" evalsha EVALSHA "$digest_sha" 1 "$key"
	if [[ $scan != - ]]; then
		cli CONFIG RESETSTAT >/dev/null
		for _ in $(seq "$calls"); do walk "$scan" "$key"; done
		calls_per=$(cli INFO commandstats | tr -d '\r' | sed -n "s/^cmdstat_$sstat:calls=\([0-9]*\),usec=\([0-9]*\).*/\2 \1/p")
		read -r us n <<<"$calls_per"
		printf '| %s: %s walk, COUNT 1000 | %s (%s calls) | - |\n' "$key" "$scan" "$((us / calls))" "$((n / calls))"
	fi
	way "$key: $len" "$lstat" "$len" "$key"
done
# A long list told of pushes and pops only is read from its ends: LLEN and
# two windows of 128 (one of them measured here).
way "l: LRANGE 0 127 (a window at one end)" lrange LRANGE l 0 127
