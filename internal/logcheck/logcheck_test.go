package logcheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func schema(t *testing.T) *Schema {
	t.Helper()
	p, err := SchemaPath()
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSchema(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	goodText = `time=2026-12-04T14:24:36.956Z level=INFO msg="stop report" logger=spotinit schema=1 version=v1.2.3 trigger=spot-interruption action=terminate lead=117.939 deadline=2026-12-04T14:26:32.000Z hooks="[{\"name\":\"pre-stop[1]\",\"kind\":\"pre-stop\",\"status\":\"ok\",\"duration\":0.303,\"killed\":false}]" hooks_failed=0 hooks_duration=0.303 child_code=0 code=0 killed=false killed_child=false killed_descendants=0 killed_hooks=0 left=7.398 stop_timeout=30.000 kill_margin=2.000`
	goodJSON = `{"time":"2026-12-04T14:24:36.956Z","level":"INFO","msg":"stop report","logger":"spotinit","schema":1,"version":"v1.2.3","trigger":"spot-interruption","action":"terminate","lead":117.939,"deadline":"2026-12-04T14:26:32.000Z","hooks":[{"name":"pre-stop[1]","kind":"pre-stop","status":"ok","duration":0.303,"killed":false}],"hooks_failed":0,"hooks_duration":0.303,"child_code":0,"code":0,"killed":false,"killed_child":false,"killed_descendants":0,"killed_hooks":0,"left":7.398,"stop_timeout":30.000,"kill_margin":2.000}`
)

func TestParseText(t *testing.T) {
	rec, ok, err := Parse(`time=2026-12-04T14:24:36.956Z level=INFO msg="child started" logger=spotinit pid=7 argv="[\"sh\",\"-c\",\"exit 3\"]" empty=""`)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if got := strings.Join(rec.Keys, ","); got != "time,level,msg,logger,pid,argv,empty" {
		t.Errorf("keys %s", got)
	}
	if rec.Get("msg") != "child started" || rec.Get("argv") != `["sh","-c","exit 3"]` || rec.Get("empty") != "" {
		t.Errorf("values %q", rec.Raw)
	}
	for _, bad := range []string{`time=x msg="unterminated`, `time=x msg="a"b`, `time=x novalue`, `time=x  double=space`} {
		if _, ok, err := Parse(bad); !ok || err == nil {
			t.Errorf("%s: parsed", bad)
		}
	}
	if _, ok, _ := Parse("hook pre-stop[1]: time=x"); ok {
		t.Error("a line that is not a record was taken for one")
	}
}

// TestProblems: each rule breaks on its own negative example.
func TestProblems(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`time=2026-12-04T14:24:36.956Z level=INFO msg=x logger=spotinit a=1`, ""},
		{`{"time":"2026-12-04T14:24:36.956Z","level":"INFO","msg":"x","logger":"spotinit","a":[1,{"b":2}]}`, ""},
		{`time=2026-12-04T14:24:36.956Z level=INFO msg="simulated spot notice visible" logger=spotinit action=terminate time=2026-12-04T14:26:32Z`, `key "time" twice`},
		{`{"time":"2026-12-04T14:24:36.956Z","level":"INFO","msg":"x","logger":"spotinit","time":"2026-12-04T14:26:32Z"}`, `key "time" twice`},
		{`{"time":"2026-12-04T14:24:36.956Z","level":"INFO","msg":"x","logger":"spotinit","a":{"b":1,"b":2}}`, `unreadable record: key "b" twice`},
		{`time=2026-12-04T14:24:36.956Z level=INFO msg=x`, "no logger=spotinit"},
		{`time=2026-12-04T14:24:36Z level=INFO msg=x logger=spotinit`, "time=2026-12-04T14:24:36Z: want UTC"},
		{`time=2026-12-04T14:24:36.956Z level=INFO msg=x logger=spotinit deadline=2026-12-04T14:24:36.956123456Z`, "deadline=2026-12-04T14:24:36.956123456Z: want UTC"},
		{`{"time":"2026-12-04T14:24:36.956+01:00","level":"INFO","msg":"x","logger":"spotinit"}`, "want UTC"},
		{`time=2026-12-04T14:24:36.956Z level=INFO msg=x logger=spotinit lead=1m57.939s`, "lead=1m57.939s: a duration is seconds"},
		{`{"time":"2026-12-04T14:24:36.956Z","level":"INFO","msg":"x","logger":"spotinit","duration":"4ms"}`, "duration=4ms: a duration is seconds"},
		{`time=2026-12-04T14:24:36.956Z level=INFO msg="hook output" logger=spotinit hook=h line=10s`, ""},
	} {
		res := Check(nil, tc.line)
		if res.Records != 1 {
			t.Errorf("%s: %d records", tc.line, res.Records)
			continue
		}
		got := strings.Join(res.Problems, "\n")
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.line, got, tc.want)
		}
	}
}

// TestReports: a good report passes in both formats, and both formats give
// the same document; each kind of fault is caught.
func TestReports(t *testing.T) {
	s := schema(t)
	res := Check(s, goodText+"\n"+goodJSON+"\n")
	if res.Records != 2 || res.Reports != 2 || len(res.Problems) > 0 {
		t.Fatalf("%+v", res)
	}
	rt, _, _ := Parse(goodText)
	rj, _, _ := Parse(goodJSON)
	dt, err1 := rt.Document(s)
	dj, err2 := rj.Document(s)
	if err1 != nil || err2 != nil || show(dt) != show(dj) {
		t.Errorf("text and JSON differ:\n%s\n%s\n%v %v", show(dt), show(dj), err1, err2)
	}
	for _, tc := range []struct{ from, to, want string }{
		{`"schema":1`, `"schema":2`, "/schema: 2 is not 1"},
		{`"code":0`, `"code":-1`, "/code: -1 is less than 0"},
		{`"code":0`, `"code":256`, "/code: 256 is more than 255"},
		{`"code":0`, `"code":0.5`, "/code: 0.5 is not of type integer"},
		{`"left":7.398`, `"left":-0.011`, "/left: -0.011 is less than 0"},
		{`"killed":false,`, ``, `required property "killed" is missing`},
		{`"kill_margin":2.000`, `"kill_margin":2.000,"child":"exit 0"`, `property "child" is not allowed`},
		{`"trigger":"spot-interruption"`, `"trigger":"rebalance"`, `does not match`},
		{`"action":"terminate"`, `"action":"explode"`, `is not one of`},
		{`"deadline":"2026-12-04T14:26:32.000Z"`, `"deadline":"2026-12-04T14:26:32Z"`, `/deadline: "2026-12-04T14:26:32Z" does not match`},
		{`"status":"ok"`, `"status":"exit--1"`, `/hooks/0/status`},
		{`"duration":0.303,`, `"duration":"303ms",`, `/hooks/0/duration: "303ms" is not of type number`},
		{`"killed":false}]`, `"killed":false,"extra":1}]`, `/hooks/0: property "extra" is not allowed`},
		{`"version":"v1.2.3"`, `"version":""`, `is shorter than 1`},
		// What the schema cannot say.
		{`"killed_descendants":0`, `"killed_descendants":1`, "killed=false, want true"},
		{`"hooks_failed":0`, `"hooks_failed":1`, "hooks_failed=1, but 0 hooks are not ok"},
		{`"killed_child":false`, `"killed_child":true`, "killed=false, want true"},
		{`"action":"terminate",`, ``, "action present false for trigger spot-interruption"},
	} {
		bad := strings.Replace(goodJSON, tc.from, tc.to, 1)
		if bad == goodJSON {
			t.Fatalf("%s not in the good report", tc.from)
		}
		res := Check(s, bad)
		if got := strings.Join(res.Problems, "\n"); !strings.Contains(got, tc.want) {
			t.Errorf("%s → %s: got %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
	// A text value that is not what the schema says its key holds.
	res = Check(s, strings.Replace(goodText, "killed=false", "killed=no", 1))
	if len(res.Problems) == 0 || !strings.Contains(res.Problems[0], "killed=no: not true or false") {
		t.Errorf("%q", res.Problems)
	}
}

func TestCheckFile(t *testing.T) {
	s := schema(t)
	if ps := CheckFile(s, []byte(goodJSON+"\n")); len(ps) > 0 {
		t.Errorf("%q", ps)
	}
	for _, bad := range []string{goodJSON, goodJSON + "\n" + goodJSON + "\n", `{"time":"2026-12-04T14:24:36.956Z","level":"INFO","msg":"x","logger":"spotinit"}` + "\n"} {
		if ps := CheckFile(s, []byte(bad)); len(ps) == 0 {
			t.Errorf("%q passed", bad)
		}
	}
}

// TestSchemaKeywords: a keyword the validator does not implement is refused,
// so that the published schema can never say more than the tests check.
func TestSchemaKeywords(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ schema, want string }{
		{`{"type":"object","properties":{"a":{"oneOf":[]}}}`, `keyword "oneOf" is not supported`},
		{`{"type":["string","null"]}`, "one type name only"},
		{`{"$ref":"#/$defs/none"}`, "no such definition"},
		{`{"format":"uri"}`, "format uri"},
		{`{"pattern":"("}`, "pattern"},
		{`{"$schema":"http://json-schema.org/draft-07/schema#"}`, "want draft 2020-12"},
	} {
		p := filepath.Join(dir, "s.json")
		if err := os.WriteFile(p, []byte(tc.schema), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadSchema(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.schema, err, tc.want)
		}
	}
}

// TestSchemaNamesEveryField: the schema and its page document the same
// fields.
func TestSchemaNamesEveryField(t *testing.T) {
	s := schema(t)
	p, _ := SchemaPath()
	page, err := os.ReadFile(filepath.Join(filepath.Dir(p), "stop-report.md"))
	if err != nil {
		t.Fatal(err)
	}
	props, _ := s.root["properties"].(map[string]any)
	var names []string
	for k := range props {
		names = append(names, k)
		if !strings.Contains(string(page), "| `"+k+"` |") {
			t.Errorf("docs/stop-report.md has no row for %s", k)
		}
	}
	slices.Sort(names)
	if len(names) < 20 {
		t.Errorf("only %d properties: %q", len(names), names)
	}
}
