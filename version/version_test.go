package version

import (
	"runtime/debug"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := func(rev, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}}
	}
	for _, tc := range []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		want    string
	}{
		{"stamped wins", "v1.2.0-3-g48099e7-dirty", vcs("48099e70b302cec77d0240261cd46648296cd587", "true"), "v1.2.0-3-g48099e7-dirty"},
		{"go install at a version", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}, "v1.2.0"},
		{"checkout", "", vcs("48099e70b302cec77d0240261cd46648296cd587", "false"), "0.1.0-dev+48099e70b302"},
		{"checkout with changes", "", vcs("48099e70b302cec77d0240261cd46648296cd587", "true"), "0.1.0-dev+48099e70b302.dirty"},
		{"nothing known", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "0.1.0-dev"},
		{"no build info", "", nil, "0.1.0-dev"},
	} {
		if got := resolve(tc.stamped, tc.bi); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
