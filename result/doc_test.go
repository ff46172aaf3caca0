package result

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// fields lists the JSON field paths of t: "usage.wall_seconds",
// "denials[].host".
func fields(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		out = append(out, path)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, fields(ft.Elem(), path+"[].")...)
		case ft.Kind() == reflect.Struct && ft.PkgPath() != "time":
			out = append(out, fields(ft, path+".")...)
		}
	}
	return out
}

// TestDocMatchesSchema: docs/result.md's field table names every field of
// Result and nothing else, its version is Version, and its example decodes
// into Result with no unknown field.
func TestDocMatchesSchema(t *testing.T) {
	data, err := os.ReadFile("../docs/result.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	row := regexp.MustCompile("(?m)^\\| `([a-z_.\\[\\]]+)` \\|")
	var documented []string
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		documented = append(documented, m[1])
	}
	want := fields(reflect.TypeOf(Result{}), "")
	sort.Strings(documented)
	sort.Strings(want)
	if !reflect.DeepEqual(documented, want) {
		t.Errorf("docs/result.md documents\n  %v\nResult has\n  %v", documented, want)
	}
	ex := regexp.MustCompile("(?s)```json\n(.*?)```").FindStringSubmatch(doc)
	if ex == nil {
		t.Fatal("docs/result.md has no ```json example")
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(ex[1])))
	dec.DisallowUnknownFields()
	var r Result
	if err := dec.Decode(&r); err != nil {
		t.Errorf("the example: %v", err)
	}
	if r.Version != Version {
		t.Errorf("the example's version is %d, the schema's %d", r.Version, Version)
	}
	// Every field of the example is there: a missing one would be a
	// consumer's surprise.
	var raw map[string]json.RawMessage
	json.Unmarshal([]byte(ex[1]), &raw)
	for _, f := range want {
		if !strings.Contains(f, ".") && raw[f] == nil {
			t.Errorf("the example lacks %q", f)
		}
	}
}
