package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	setting := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, tc := range []struct {
		name              string
		stamped, stampedC string
		bi                *debug.BuildInfo
		stub              bool
		want              string
	}{
		{"release build", "1.2.3", "0123abcd", &debug.BuildInfo{GoVersion: "go1.26.8",
			Main: debug.Module{Version: "(devel)"}, Settings: setting("-buildmode", "exe", "CGO_ENABLED", "0")}, true,
			"spotinit version 1.2.3\ncommit: 0123abcd\ngo: go1.26.8 GOOSARCH\nentry stub: yes\npie: no\n"},
		{"go install module@version", "", "", &debug.BuildInfo{GoVersion: "go1.26.8",
			Main: debug.Module{Version: "v1.2.3", Sum: "h1:x"}, Settings: setting("-buildmode", "exe")}, false,
			"spotinit version 1.2.3\ncommit: unknown\ngo: go1.26.8 GOOSARCH\nentry stub: no\npie: no\n"},
		{"plain build, -buildvcs=false", "", "", &debug.BuildInfo{GoVersion: "go1.26.8",
			Main: debug.Module{Version: "(devel)"}, Settings: setting("-buildmode", "exe")}, false,
			"spotinit version dev\ncommit: unknown\ngo: go1.26.8 GOOSARCH\nentry stub: no\npie: no\n"},
		{"plain build in a checkout, PIE", "", "", &debug.BuildInfo{GoVersion: "go1.26.8",
			Main:     debug.Module{Version: "v0.0.0-20261204142443-7f6cbe426043+dirty"},
			Settings: setting("-buildmode", "pie", "vcs.revision", "7f6cbe42604307385fd1a2ff718a54fc552b850a", "vcs.modified", "true")}, false,
			"spotinit version 0.0.0-20261204142443-7f6cbe426043+dirty\ncommit: 7f6cbe42604307385fd1a2ff718a54fc552b850a-dirty\ngo: go1.26.8 GOOSARCH\nentry stub: no\npie: yes\n"},
		{"stamped version wins over the module's", "ci", "", &debug.BuildInfo{GoVersion: "go1.26.8",
			Main: debug.Module{Version: "v9.9.9"}, Settings: setting("-buildmode", "exe", "vcs.revision", "abc", "vcs.modified", "false")}, true,
			"spotinit version ci\ncommit: abc\ngo: go1.26.8 GOOSARCH\nentry stub: yes\npie: no\n"},
		{"no build information", "", "", nil, false,
			"spotinit version dev\ncommit: unknown\ngo: GOVERSION GOOSARCH\nentry stub: no\npie: unknown\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := describe(tc.stamped, tc.stampedC, tc.bi, tc.stub)
			var b strings.Builder
			d.write(&b)
			want := strings.NewReplacer("GOOSARCH", d.platform, "GOVERSION", d.goVer).Replace(tc.want)
			if b.String() != want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), want)
			}
		})
	}
}
