package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "100000": 100000, "1b": 1, "1k": 1000, "1kb": 1024, "1K": 1000, "1KB": 1024,
		"1m": 1_000_000, "512mb": 512 << 20, "1g": 1_000_000_000, "1gb": 1 << 30, "1GB": 1 << 30,
		"64MiB": 64 << 20, "256MiB": 256 << 20, "1.5GiB": 3 << 29,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1xb", "gb", "99999999999gb", "lots"} {
		if got, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", bad, got)
		}
	}
}

func TestYesNoFlags(t *testing.T) {
	var protected, mesh bool
	fl := pflag.NewFlagSet("t", pflag.ContinueOnError)
	boolFlag(fl, &protected, "protected-mode", true, false, "")
	boolFlag(fl, &mesh, "no-mesh", false, true, "")
	if err := fl.Parse([]string{"--protected-mode", "no", "--no-mesh", "arg"}); err != nil {
		t.Fatal(err)
	}
	if protected || !mesh || fl.Arg(0) != "arg" {
		t.Fatalf("protected %v, no-mesh %v, args %v", protected, mesh, fl.Args())
	}
	for in, want := range map[string]bool{"yes": true, "YES": true, "no": false, "true": true, "false": false, "1": true, "0": false} {
		if got, err := parseYesNo(in); err != nil || got != want {
			t.Errorf("parseYesNo(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := parseYesNo("maybe"); err == nil {
		t.Error("parseYesNo(maybe) succeeded")
	}
}

func TestSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{"0": 0, "300": 5 * time.Minute, "1m30s": 90 * time.Second, "250ms": 250 * time.Millisecond} {
		if got, err := parseSeconds(in); err != nil || got != want {
			t.Errorf("parseSeconds(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "-5", "soon", "99999999999999999999"} {
		if _, err := parseSeconds(bad); err == nil {
			t.Errorf("parseSeconds(%q) succeeded", bad)
		}
	}
}

func TestLogFormat(t *testing.T) {
	var b bytes.Buffer
	log, err := newLogger(&b, "json", "info", new(slog.LevelVar))
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("hello", "k", 1)
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil || rec["msg"] != "hello" || rec["k"] != 1.0 {
		t.Fatalf("json log %q: %v", b.String(), err)
	}
	b.Reset()
	if log, err = newLogger(&b, "text", "debug", new(slog.LevelVar)); err != nil {
		t.Fatal(err)
	}
	log.Debug("shown")
	if !strings.Contains(b.String(), "msg=shown") {
		t.Fatalf("text log %q", b.String())
	}
	if _, err := newLogger(&b, "xml", "info", new(slog.LevelVar)); err == nil {
		t.Fatal("--log-format xml accepted")
	}
	if _, err := newLogger(&b, "text", "loud", new(slog.LevelVar)); err == nil {
		t.Fatal("--log-level loud accepted")
	}
}

// TestRewriteConfigFile: settings change in place, new ones are appended,
// comments and other settings stay, and the file reads back as set.
func TestRewriteConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "redmesh.yaml")
	orig := "# the site's node\ndata: /var/lib/redmesh # on the big disk\ntimeout: 10\n"
	if err := os.WriteFile(path, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := rewriteConfigFile(path, map[string]string{"timeout": "300", "requirepass": "123: #x", "protected-mode": "no"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	got := string(b)
	for _, want := range []string{"# the site's node", "data: /var/lib/redmesh # on the big disk", "timeout: 300", "protected-mode: no"} {
		if !strings.Contains(got, want) {
			t.Errorf("rewritten config lacks %q:\n%s", want, got)
		}
	}
	var fl pflag.FlagSet
	var data, pass string
	var timeout time.Duration
	var protected bool
	fl.StringVar(&data, "data", "", "")
	fl.StringVar(&pass, "requirepass", "", "")
	durationFlag(&fl, &timeout, "timeout", 0, "")
	boolFlag(&fl, &protected, "protected-mode", true, false, "")
	if err := applyConfigFile(&fl, path); err != nil {
		t.Fatalf("read back: %v\n%s", err, got)
	}
	if data != "/var/lib/redmesh" || pass != "123: #x" || timeout != 300*time.Second || protected {
		t.Fatalf("read back data %q, requirepass %q, timeout %v, protected-mode %v:\n%s", data, pass, timeout, protected, got)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o640 {
		t.Errorf("mode %v after rewrite", info.Mode())
	}
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	os.WriteFile(empty, nil, 0o600)
	if err := rewriteConfigFile(empty, map[string]string{"maxclients": "5"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(empty); strings.TrimSpace(string(b)) != "maxclients: 5" {
		t.Fatalf("an empty file rewritten: %q", b)
	}
}
