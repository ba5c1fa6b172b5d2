// Package version says which build of redmesh is running.
package version

import "runtime/debug"

// stamped is set by a release build's linker:
//
//	go build -ldflags "-X github.com/redmesh/redmesh/version.stamped=$(git describe --tags --always --dirty)"
var stamped string

// base is the release under way, for builds that carry nothing better.
const base = "0.1.0-dev"

// String is the version of this build: the one a release build stamped;
// else the main module's version as Go recorded it (v1.2.3 for `go install
// ...@v1.2.3`; in a checkout, from Go 1.24 on, its tag or a pseudo-version
// naming the commit, "+dirty" with changes); else base with the git
// revision Go recorded (".dirty" with changes); else base.
func String() string {
	bi, _ := debug.ReadBuildInfo()
	return resolve(stamped, bi)
}

func resolve(stamped string, bi *debug.BuildInfo) string {
	if stamped != "" {
		return stamped
	}
	if bi == nil {
		return base
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return base
	}
	v := base + "+" + rev[:min(len(rev), 12)]
	if modified == "true" {
		v += ".dirty"
	}
	return v
}
