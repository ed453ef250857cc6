package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// The SBOM of a release binary starts as cyclonedx-gomod's "bin" document:
// the modules linked into the binary, read from its build information, each
// with scope "required". Then every other module of go.mod's build list (go
// list -m all: modules only the tests, the generators or other modules' tests
// need) is added with scope "excluded", CycloneDX's word for a component that
// is documented but not reachable at run time. So the SBOM answers both "what
// is in this binary" (the required components, and the main component's
// dependsOn) and "which module versions went into building it".

// buildModule is one module of the build list, as "go list -m" gives it.
type buildModule struct{ Path, Version string }

// buildList is go.mod's build list without the main module: go list -m all,
// with replacements resolved to the module that is really used.
func buildList(dir string, env []string) ([]buildModule, error) {
	out, err := output(dir, env, "go", "list", "-m", "-json", "all")
	if err != nil {
		return nil, err
	}
	var mods []buildModule
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var m struct {
			Path, Version string
			Main          bool
			Replace       *struct{ Path, Version string }
		}
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("go list -m -json all: %w", err)
		}
		if m.Main {
			continue
		}
		if m.Replace != nil {
			m.Path, m.Version = m.Replace.Path, m.Replace.Version
		}
		mods = append(mods, buildModule{m.Path, m.Version})
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("go list -m all: no modules")
	}
	return mods, nil
}

// modulePURL is the package URL cyclonedx-gomod gives a module.
func modulePURL(m buildModule) string {
	return "pkg:golang/" + m.Path + "@" + m.Version + "?type=module"
}

// addBuildList adds to the SBOM at path every module of mods it does not
// list yet, with scope "excluded", and rewrites it. Components stay sorted
// by name; the document's other members keep their content (their order
// becomes JSON key order, the same on every run).
func addBuildList(path string, mods []buildModule) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var comps []map[string]any
	if err := json.Unmarshal(doc["components"], &comps); err != nil {
		return fmt.Errorf("%s: components: %w", path, err)
	}
	listed := map[string]bool{}
	for _, c := range comps {
		name, _ := c["name"].(string)
		version, _ := c["version"].(string)
		listed[name+"@"+version] = true
	}
	for _, m := range mods {
		if listed[m.Path+"@"+m.Version] {
			continue
		}
		comps = append(comps, map[string]any{
			"bom-ref": modulePURL(m), "type": "library", "name": m.Path, "version": m.Version,
			"scope": "excluded", "purl": modulePURL(m),
		})
	}
	sort.SliceStable(comps, func(i, j int) bool {
		ni, nj := fmt.Sprint(comps[i]["name"]), fmt.Sprint(comps[j]["name"])
		if ni != nj {
			return ni < nj
		}
		return fmt.Sprint(comps[i]["version"]) < fmt.Sprint(comps[j]["version"])
	})
	if doc["components"], err = json.Marshal(comps); err != nil {
		return err
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	return os.WriteFile(path, out.Bytes(), 0o644)
}
