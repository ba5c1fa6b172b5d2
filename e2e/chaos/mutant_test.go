package chaos

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A mutant is a deliberately broken build: one edit of the source, made in
// a copy of the module, never in the tree. -chaos.mutant runs the mesh on
// one, to show that the checker fails it.
type mutant struct {
	file, old, new string
	why            string
}

var mutants = map[string]mutant{
	"admit-beyond-skew": {
		why:  "a node merges a peer's version however far ahead of its clock",
		file: "mesh/admit.go",
		old:  "\treturn clock.Observe(v.TS)\n",
		new:  "\t_ = clock.Observe(v.TS)\n\treturn nil\n",
	},
	"typed-merge-keeps-removed": {
		why:  "merging typed states keeps elements a remove traced: removed members, fields and counts come back",
		file: "record/typed.go",
		old:  "\tout = slices.DeleteFunc(out, func(e Elem) bool { return traced(traces, e) })\n",
		new:  "",
	},
	"counter-merge-keeps-own": {
		why:  "merging a counter keeps the receiver's count of an origin it already has, not the origin's newer one",
		file: "record/typed.go",
		old:  "\tif c := b.Ver.Compare(a.Ver); c > 0 || c == 0 && (b.Total > a.Total || b.Total == a.Total && b.FTotal > a.FTotal) {\n",
		new:  "\tif c := b.Ver.Compare(a.Ver); c > 0 && false || c == 0 && (b.Total > a.Total || b.Total == a.Total && b.FTotal > a.FTotal) {\n",
	},
	"list-merge-keeps-popped": {
		why:  "merging lists keeps elements a pop, LSET or LTRIM traced: popped and overwritten values stay",
		file: "record/typed.go",
		old:  "\t\tm.Listed = mergeElems(a.Listed, b.Listed, m.Removed)\n",
		new:  "\t\tm.Listed = unionElems(a.Listed, b.Listed)\n",
	},
	"rpush-at-head": {
		why:  "RPUSH takes a position before the list's first element, not after its last",
		file: "node/lists.go",
		old:  "\t\t\tlo = view.At(view.Len() - 1).Name\n",
		new:  "\t\t\thi = view.At(0).Name\n",
	},
	"sadd-held-no-dot": {
		why:  "an SADD of a member the key holds adds nothing: a concurrent SREM elsewhere that saw only the older add takes the member",
		file: "node/sets.go",
		old:  "\t\t\tif !w.live || !w.op.HasMember(m) {\n\t\t\t\tadded++\n\t\t\t}\n",
		new:  "\t\t\tif w.live && w.op.HasMember(m) {\n\t\t\t\tcontinue\n\t\t\t}\n\t\t\tadded++\n",
	},
	"drop-remote-tombstones": {
		why:  "a node ignores peers' records of deleted keys",
		file: "node/merkle.go",
		old:  "\t\tbatch = append(batch, decoded{r.Key, rec})\n",
		new:  "\t\tif rec.Value.Tombstone {\n\t\t\tcontinue\n\t\t}\n\t\tbatch = append(batch, decoded{r.Key, rec})\n",
	},
}

func mutantNames() string { return strings.Join(slices.Sorted(maps.Keys(mutants)), ", ") }

// buildMutant copies the module's Go sources under root to a directory in
// dir, applies mutant name and builds redmesh there into out.
func buildMutant(name, root, dir, out string) error {
	m, ok := mutants[name]
	if !ok {
		return fmt.Errorf("-chaos.mutant %q: known are %s", name, mutantNames())
	}
	src := filepath.Join(dir, "src")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		base := d.Name()
		if base != "go.mod" && base != "go.sum" && (!strings.HasSuffix(base, ".go") || strings.HasSuffix(base, "_test.go")) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(src, rel), b, 0o644)
	})
	if err != nil {
		return fmt.Errorf("copy the module: %w", err)
	}
	target := filepath.Join(src, m.file)
	b, err := os.ReadFile(target)
	if err != nil {
		return fmt.Errorf("mutant %s: %w", name, err)
	}
	if strings.Count(string(b), m.old) != 1 {
		return fmt.Errorf("mutant %s: %s no longer holds the code it breaks (update the mutant):\n%s", name, m.file, m.old)
	}
	if err := os.WriteFile(target, []byte(strings.Replace(string(b), m.old, m.new, 1)), 0o644); err != nil {
		return err
	}
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/redmesh")...)
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build mutant %s: %w\n%s", name, err, b)
	}
	return nil
}

// Every mutant still finds the code it breaks, so that -chaos.mutant keeps
// working as the source changes.
func TestMutantsApply(t *testing.T) {
	for name, m := range mutants {
		b, err := os.ReadFile(filepath.Join("../..", m.file))
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), m.old); n != 1 {
			t.Errorf("mutant %s (%s): %s holds the code it breaks %d times, want once", name, m.why, m.file, n)
		}
	}
}
