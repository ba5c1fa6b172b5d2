package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProgramLinksNoUnusedTransports: the program links none of the
// packages of libp2p's transports the mesh does not use, nor the root
// package that pulls them all in (gossip/host.go builds the host from
// libp2p's parts). Every package linked is mapped into every node, so one
// imported back by a convenience call shows here, not only in the size.
func TestProgramLinksNoUnusedTransports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	banned := []string{
		"github.com/libp2p/go-libp2p",        // the root package: every default transport
		"github.com/libp2p/go-libp2p/config", // libp2p.New's assembly
		"github.com/libp2p/go-libp2p/p2p/transport/webrtc",
		"github.com/libp2p/go-libp2p/p2p/transport/websocket",
		"github.com/libp2p/go-libp2p/p2p/transport/webtransport",
		"github.com/pion/",
		"github.com/quic-go/webtransport-go",
		"github.com/gorilla/websocket",
		"go.uber.org/fx",
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, b := range banned {
			if pkg == b || strings.HasSuffix(b, "/") && strings.HasPrefix(pkg, b) {
				t.Errorf("the program links %s", pkg)
			}
		}
	}
}
