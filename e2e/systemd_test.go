package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnitVerifies: ops/systemd/redmesh.service passes systemd's own
// checks (with ExecStart pointed at the binary under test), and its
// hardening keeps systemd's exposure score low.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian: systemd)")
	}
	b, err := os.ReadFile("../ops/systemd/redmesh.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/redmesh",
		"PrivateTmp=yes", "ProtectHome=yes", "DynamicUser=yes", "--data /var/lib/redmesh"} {
		if !strings.Contains(unit, want+"\n") && !strings.Contains(unit, want+" ") {
			t.Errorf("the unit lacks %s", want)
		}
	}
	const exec0 = "ExecStart=/usr/local/bin/redmesh "
	if !strings.Contains(unit, exec0) {
		t.Fatalf("the unit has no %q", exec0)
	}
	path := filepath.Join(t.TempDir(), "redmesh.service")
	if err := os.WriteFile(path, []byte(strings.Replace(unit, exec0, "ExecStart="+binary+" ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// --threshold counts in tenths of the score it prints: 20 is 2.0.
	out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=20", path).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: exposure over 2: %v\n%s", err, out)
	}
	if i := strings.LastIndex(string(out), "Overall"); i >= 0 {
		t.Logf("%s", out[i:])
	}
}
