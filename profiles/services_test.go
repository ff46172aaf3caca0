package profiles

import (
	"reflect"
	"testing"
	"time"

	"github.com/hutch-sandbox/hutch/sandbox"
)

// TestServices: [services.NAME] tables become the Spec's services: every
// key's forms, $VAR in env and ${PROJECT} in data expanded, and a later
// file's table replacing an earlier one's whole (your profile's db under
// the project's), while the others stay.
func TestServices(t *testing.T) {
	w := newWorld(t, map[string]string{
		".config/hutch/profiles/base.toml": "[services.db]\ncommand = \"old-db\"\nready = \"tcp:1\"\n[services.mail]\ncommand = \"mailpit\"\n",
		"proj/hutch.toml": `extends = ["base"]
[services.db]
command = "postgres -D /data"
ready = ["pg_isready", "-q"]
ready_timeout = "30s"
data = "${PROJECT}/pg"
env = { PGUSER = "$USER", N = "1" }
after = ["cache", "cache"]
[services.cache]
command = ["redis-server", "--port", "6379"]
ready = "tcp:6379"
`,
		"proj/pg/.k": "",
	})
	w.env = append(w.env, "USER=dev")
	got := w.spec(w.load(w.opts())).Services
	want := []sandbox.Service{
		{Name: "cache", Args: []string{"redis-server", "--port", "6379"}, Ready: "tcp:6379"},
		{Name: "db", Args: []string{"postgres", "-D", "/data"}, ReadyCommand: []string{"pg_isready", "-q"}, ReadyTimeout: 30 * time.Second,
			Data: "~/proj/pg", Env: map[string]string{"PGUSER": "dev", "N": "1"}, After: []string{"cache"}},
		{Name: "mail", Args: []string{"mailpit"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("services:\n got %+v\nwant %+v", got, want)
	}
}
