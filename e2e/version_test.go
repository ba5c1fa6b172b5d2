package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestVersionIsStamped: a release build prints the version stamped from
// git at link time, in `redmesh version` and in INFO; a build stamped with
// nothing shows what Go recorded of the checkout.
func TestVersionIsStamped(t *testing.T) {
	const stamp = "v9.8.7-6-g0123abc-dirty"
	stamped := build(t, "-ldflags", "-X github.com/redmesh/redmesh/version.stamped="+stamp)
	out, err := exec.Command(stamped, "version").CombinedOutput()
	want := "redmesh " + stamp + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if err != nil || string(out) != want {
		t.Fatalf("stamped redmesh version: %v\n%q, want %q", err, out, want)
	}
	p := startBinary(t, stamped, t.TempDir(), "--no-mesh")
	if v := infoOf(t, p.client(t), "server")["redmesh_version"]; v != stamp {
		t.Fatalf("INFO redmesh_version = %q, want %q", v, stamp)
	}

	// Unstamped: what Go recorded from the checkout, as go version -m
	// shows it: a version from the commit (Go 1.24 on), or else the
	// commit; none for a worktree (Go looks for a .git directory).
	unstamped := build(t, "-buildvcs=auto")
	meta, err := exec.Command("go", "version", "-m", unstamped).Output()
	if err != nil {
		t.Fatal(err)
	}
	want = "redmesh 0.1.0-dev "
	if m := regexp.MustCompile(`(?m)^\tmod\t\S+\t(v\S+)`).FindSubmatch(meta); m != nil {
		want = "redmesh " + string(m[1]) + " "
	} else if m := regexp.MustCompile(`vcs\.revision=([0-9a-f]{12})`).FindSubmatch(meta); m != nil {
		want = "redmesh 0.1.0-dev+" + string(m[1])
		if strings.Contains(string(meta), "vcs.modified=true") {
			want += ".dirty"
		}
	}
	out, err = exec.Command(unstamped, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), want) {
		t.Fatalf("redmesh version: %v\n%s; want %q first", err, out, want)
	}
	t.Logf("unstamped: %s", out)
}

// build builds redmesh with flags, as TestMain does otherwise (sharing its
// build cache: only the link is new), and returns the binary.
func build(t *testing.T, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "redmesh")
	args := append([]string{"build", "-o", bin}, flags...)
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, "../cmd/redmesh")...).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Join(flags, " "), err, out)
	}
	return bin
}
