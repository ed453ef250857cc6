package logcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Schema is a JSON Schema (draft 2020-12) limited to the keywords
// docs/stop-report.schema.json uses. Loading a schema with any other
// keyword fails, so that a keyword this validator would ignore can never
// slip into the published file.
type Schema struct {
	root map[string]any
}

// keywords are the supported keywords; the annotations among them are
// accepted and not checked.
var keywords = map[string]bool{
	"$schema": true, "$id": true, "$comment": true, "title": true, "description": true, "examples": true,
	"$defs": true, "$ref": true, "type": true, "const": true, "enum": true, "pattern": true,
	"minLength": true, "minimum": true, "maximum": true, "required": true, "properties": true,
	"additionalProperties": true, "items": true, "format": true,
}

// LoadSchema reads and checks a schema file.
func LoadSchema(path string) (*Schema, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: not an object", path)
	}
	s := &Schema{root: root}
	if err := s.check(root, "#"); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// check refuses unknown keywords and malformed values, everywhere.
func (s *Schema) check(node map[string]any, at string) error {
	for k, v := range node {
		if !keywords[k] {
			return fmt.Errorf("%s: keyword %q is not supported by this validator", at, k)
		}
		switch k {
		case "$schema":
			if v != "https://json-schema.org/draft/2020-12/schema" {
				return fmt.Errorf("%s: $schema %v: want draft 2020-12", at, v)
			}
		case "format":
			if v != "date-time" {
				return fmt.Errorf("%s: format %v is not supported", at, v)
			}
		case "pattern":
			p, ok := v.(string)
			if !ok {
				return fmt.Errorf("%s: pattern is not a string", at)
			}
			if _, err := regexp.Compile(p); err != nil {
				return fmt.Errorf("%s: pattern: %w", at, err)
			}
		case "$ref":
			if _, err := s.resolve(v); err != nil {
				return fmt.Errorf("%s: %w", at, err)
			}
		case "$defs", "properties":
			m, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: %s is not an object", at, k)
			}
			for name, sub := range m {
				sm, ok := sub.(map[string]any)
				if !ok {
					return fmt.Errorf("%s/%s/%s: not a schema", at, k, name)
				}
				if err := s.check(sm, at+"/"+k+"/"+name); err != nil {
					return err
				}
			}
		case "items", "additionalProperties":
			switch sub := v.(type) {
			case bool:
			case map[string]any:
				if err := s.check(sub, at+"/"+k); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%s: %s is not a schema", at, k)
			}
		case "type":
			switch v {
			case "object", "array", "string", "number", "integer", "boolean", "null":
			default:
				return fmt.Errorf("%s: type %v is not supported (one type name only)", at, v)
			}
		case "required", "enum":
			if _, ok := v.([]any); !ok {
				return fmt.Errorf("%s: %s is not an array", at, k)
			}
		case "minimum", "maximum", "minLength":
			if _, ok := v.(json.Number); !ok {
				return fmt.Errorf("%s: %s is not a number", at, k)
			}
		}
	}
	return nil
}

// resolve follows a "#/$defs/NAME" reference.
func (s *Schema) resolve(ref any) (map[string]any, error) {
	r, _ := ref.(string)
	name, ok := strings.CutPrefix(r, "#/$defs/")
	if !ok {
		return nil, fmt.Errorf("$ref %v: only #/$defs/NAME is supported", ref)
	}
	defs, _ := s.root["$defs"].(map[string]any)
	d, ok := defs[name].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("$ref %v: no such definition", ref)
	}
	return d, nil
}

// Validate checks a document decoded by Decode (numbers as json.Number)
// and returns every violation, each with its JSON pointer.
func (s *Schema) Validate(doc any) []error {
	var errs []error
	s.validate(s.root, doc, "", &errs)
	return errs
}

func (s *Schema) validate(node map[string]any, v any, at string, errs *[]error) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("%s: %s", pointer(at), fmt.Sprintf(format, args...)))
	}
	if ref, ok := node["$ref"]; ok {
		d, err := s.resolve(ref)
		if err != nil {
			fail("%v", err)
			return
		}
		s.validate(d, v, at, errs)
	}
	if t, ok := node["type"].(string); ok && !hasType(v, t) {
		fail("%s is not of type %s", show(v), t)
		return
	}
	if c, ok := node["const"]; ok && !equal(v, c) {
		fail("%s is not %s", show(v), show(c))
	}
	if e, ok := node["enum"].([]any); ok && !slices.ContainsFunc(e, func(c any) bool { return equal(v, c) }) {
		fail("%s is not one of %s", show(v), show(e))
	}
	if str, ok := v.(string); ok {
		if p, ok := node["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			fail("%q does not match %s", str, p)
		}
		if m, ok := node["minLength"].(json.Number); ok {
			if n, _ := m.Int64(); int64(utf8.RuneCountInString(str)) < n {
				fail("%q is shorter than %d", str, n)
			}
		}
	}
	if n, ok := v.(json.Number); ok {
		x, _ := new(big.Rat).SetString(n.String())
		if m, ok := node["minimum"].(json.Number); ok {
			if lim, _ := new(big.Rat).SetString(m.String()); x.Cmp(lim) < 0 {
				fail("%s is less than %s", n, m)
			}
		}
		if m, ok := node["maximum"].(json.Number); ok {
			if lim, _ := new(big.Rat).SetString(m.String()); x.Cmp(lim) > 0 {
				fail("%s is more than %s", n, m)
			}
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := node["properties"].(map[string]any)
		if req, ok := node["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					fail("required property %q is missing", r)
				}
			}
		}
		names := make([]string, 0, len(obj))
		for k := range obj {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if sub, ok := props[k].(map[string]any); ok {
				s.validate(sub, obj[k], at+"/"+k, errs)
				continue
			}
			switch ap := node["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("property %q is not allowed", k)
				}
			case map[string]any:
				s.validate(ap, obj[k], at+"/"+k, errs)
			}
		}
	}
	if arr, ok := v.([]any); ok {
		switch it := node["items"].(type) {
		case map[string]any:
			for i, e := range arr {
				s.validate(it, e, fmt.Sprintf("%s/%d", at, i), errs)
			}
		case bool:
			if !it && len(arr) > 0 {
				fail("no items allowed")
			}
		}
	}
}

// PropertyType is the JSON type a property of the top-level object has in
// the schema: its "type", or the type of its "const" or "enum" values.
// ok is false for a property the schema does not name.
func (s *Schema) PropertyType(name string) (typ string, ok bool) {
	props, _ := s.root["properties"].(map[string]any)
	node, ok := props[name].(map[string]any)
	if !ok {
		return "", false
	}
	for {
		if t, ok := node["type"].(string); ok {
			return t, true
		}
		if c, ok := node["const"]; ok {
			return typeOf(c), true
		}
		if e, ok := node["enum"].([]any); ok && len(e) > 0 {
			return typeOf(e[0]), true
		}
		ref, ok := node["$ref"]
		if !ok {
			return "", true
		}
		if node, _ = s.resolve(ref); node == nil {
			return "", true
		}
	}
}

func typeOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if isInteger(v) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func hasType(v any, t string) bool {
	got := typeOf(v)
	return got == t || t == "number" && got == "integer"
}

func isInteger(n json.Number) bool {
	r, ok := new(big.Rat).SetString(n.String())
	return ok && r.IsInt()
}

// equal compares two decoded JSON values; numbers by value.
func equal(a, b any) bool {
	if x, ok := a.(json.Number); ok {
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		rx, _ := new(big.Rat).SetString(x.String())
		ry, _ := new(big.Rat).SetString(y.String())
		return rx != nil && ry != nil && rx.Cmp(ry) == 0
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func pointer(at string) string {
	if at == "" {
		return "/"
	}
	return at
}

// decode reads one JSON value, numbers as json.Number, and nothing after
// it.
func decode(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err == nil {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// SchemaPath is the published schema file, docs/stop-report.schema.json in
// the module's root, found from the working directory of a test (the
// directory of its package) upwards.
func SchemaPath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/spotinit/spotinit\n")) {
			return filepath.Join(dir, "docs", "stop-report.schema.json"), nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("no spotinit go.mod above the working directory")
		}
		dir = up
	}
}
