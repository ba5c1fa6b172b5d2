#!/usr/bin/env bash
# Runs BenchmarkReconcile COUNT times (default 7) and prints the median of each
# metric per sub-benchmark as a markdown table. Usage: bench/merkle.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-7}"
go test ./merkle -run '^$' -bench Reconcile -benchtime 1x -count "$count" |
awk '
/^BenchmarkReconcile/ {
	name = $1; sub(/^BenchmarkReconcile\//, "", name); sub(/-[0-9]+$/, "", name)
	if (!(name in seen)) { seen[name] = 1; order[++n] = name }
	for (i = 3; i < NF; i += 2) { v[name, $(i+1), ++cnt[name, $(i+1)]] = $i; units[$(i+1)] = 1 }
}
function median(name, u,    k, a, i, j, t) {
	k = cnt[name, u]; if (k == 0) return "-"
	for (i = 1; i <= k; i++) a[i] = v[name, u, i] + 0
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
END {
	split("round-trips meta-B/op meta-B/diff payload-B/op ns/op cpu-ms/op session-heap-MB peak-heap-MB", cols, " ")
	printf "| benchmark |"; for (c = 1; c in cols; c++) printf " %s |", cols[c]; printf "\n"
	printf "|---|"; for (c = 1; c in cols; c++) printf "---:|"; printf "\n"
	for (r = 1; r <= n; r++) {
		printf "| %s |", order[r]
		for (c = 1; c in cols; c++) printf " %s |", median(order[r], cols[c])
		printf "\n"
	}
}'
