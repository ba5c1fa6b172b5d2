package main

import (
	"io"
	"strings"
	"testing"
)

const sampleInfo = "# Server\r\nredmesh_version:0.1.0-dev\r\npeer_id:12D3KooWA\r\n\r\n# Replication\r\n" +
	"mesh_merkle_root:9331ba6ff209264e\r\nmesh_refused_clock_skew:0\r\nmesh_enabled:1\r\nmesh_peer_id:12D3KooWA\r\n" +
	"mesh_last_local_seq:111\r\nmesh_peers:2\r\nmesh_connected_peers:1\r\nmesh_ready:1\r\n" +
	"mesh_peer0:id=12D3KooWB,addr=/ip4/127.0.0.1/tcp/1,connected=0,last_sync_ms_ago=442,unacked=111,acked_seq=0,ack_lag_ms=0,cursor=none,behind=0,behind_ms=0,root=1,root_equal=0,bytes_in=1,bytes_out=2\r\n" +
	"mesh_peer1:id=12D3KooWC,addr=/ip4/127.0.0.1/tcp/2,connected=1,last_sync_ms_ago=0,unacked=11,acked_seq=100,ack_lag_ms=196,cursor=1:5,behind=3,behind_ms=1500,root=9331ba6ff209264e,root_equal=1,bytes_in=1,bytes_out=2\r\n" +
	"mesh_sessions:5\r\nmesh_keys_repaired:0\r\n\r\n# Keyspace\r\ndb0:keys=109,expires=0,avg_ttl=0\r\n"

func TestParseStatus(t *testing.T) {
	st, err := parseStatus(sampleInfo)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	st.render(&b, "127.0.0.1:6380")
	out := b.String()
	for _, want := range []string{
		"node 12D3KooWA at 127.0.0.1:6380 (redmesh 0.1.0-dev)",
		"109 keys, Merkle root 9331ba6ff209264e, local writes up to 111, ready",
		"peers: 2 known, 1 connected; Merkle sessions 5",
		"12D3KooWB  down  0       -           111      -        442ms ago  differs  /ip4/127.0.0.1/tcp/1",
		"12D3KooWC  up    3       1.5s        11       196ms    now        same     /ip4/127.0.0.1/tcp/2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if _, err := parseStatus("# Server\r\nredis_version:7.0.15\r\n"); err == nil {
		t.Error("a Redis server's INFO parsed as a redmesh node's")
	}
}

func TestStatusShowsBootstrap(t *testing.T) {
	info := strings.Replace(sampleInfo, "mesh_ready:1\r\n", "mesh_ready:0\r\nmesh_sync_in_progress:1\r\nmesh_bootstrap_in_progress:1\r\n"+
		"mesh_bootstrap_keys:450000\r\nmesh_bootstrap_keys_total:1000000\r\nmesh_bootstrap_bytes:61650000\r\nmesh_bootstrap_bytes_total:137000000\r\n", 1)
	st, err := parseStatus(info)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	st.render(&b, "127.0.0.1:6380")
	want := "bootstrapping [#############.................] 45%: 450000 of 1000000 keys, 61.6 of 137.0 MB"
	if !strings.Contains(b.String(), want) {
		t.Fatalf("status lacks %q:\n%s", want, b.String())
	}
	st, _ = parseStatus(sampleInfo)
	b.Reset()
	st.render(&b, "127.0.0.1:6380")
	if strings.Contains(b.String(), "bootstrapping") {
		t.Fatalf("a bootstrap shown where none runs:\n%s", b.String())
	}
}

// FuzzParseStatus: whatever a server answers to INFO, status neither
// panics nor fails to print.
func FuzzParseStatus(f *testing.F) {
	f.Add(sampleInfo)
	f.Add("peer_id:x\r\nmesh_enabled:1\r\nmesh_peer7:id=,,,=,connected=1\r\nmesh_peer:\r\n")
	f.Add("peer_id:x\r\nmesh_enabled:1\r\nmesh_bootstrap_in_progress:1\r\nmesh_bootstrap_bytes:-9\r\nmesh_bootstrap_bytes_total:3\r\n")
	f.Fuzz(func(t *testing.T, info string) {
		st, err := parseStatus(info)
		if err != nil {
			return
		}
		st.render(io.Discard, "addr")
	})
}
