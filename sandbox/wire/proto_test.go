package wire

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hutch-sandbox/hutch/internal/bytesjson"
	"github.com/hutch-sandbox/hutch/sandbox"
)

// TestWireBytes: strings that are not UTF-8 cross the wire as they are
// (ESCAPED, in the sense of a path silently changed, if encoding/json's
// U+FFFD got through), and so does a string that looks like the marker.
func TestWireBytes(t *testing.T) {
	proj := "/home/u/proj\xff\xfe"
	cfg := Config{
		Plan: &sandbox.Plan{
			Args: []string{"cat", "sec\xff/key"},
			Env:  []string{"A=\xc3"},
			Cwd:  proj,
			Mounts: []sandbox.Mount{
				{Kind: sandbox.MountBind, Src: proj, Dst: proj},
				{Kind: sandbox.MountHide, Dst: proj + "/sec\xff"},
				{Kind: sandbox.MountBind, Src: "/ok/ünïcode", Dst: "/ok/ünïcode"},
				{Kind: sandbox.MountFile, Dst: "/etc/x", Data: bytesjson.Mark + "not base64 at all"},
			},
		},
		RootDir: "/run/\x80",
		Seccomp: []byte{0xff, 0xfe, 0},
	}
	var buf bytes.Buffer
	if err := WriteFrame(&buf, cfg); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte(`\ufffd`)) {
		t.Errorf("ESCAPED: the frame holds U+FFFD: %s", buf.Bytes()[4:])
	}
	var got Config
	if err := ReadFrame(&buf, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Errorf("round trip changed the config:\n got %+v\nwant %+v", got.Plan, cfg.Plan)
	}
	// The caller's plan is not modified on the way.
	if cfg.Plan.Cwd != proj || cfg.Plan.Mounts[1].Dst != proj+"/sec\xff" {
		t.Errorf("writeFrame modified its argument")
	}
}

// TestWireUTF8Unchanged: a frame of UTF-8 strings is exactly what
// encoding/json writes, so golden plans and old session files read as
// before.
func TestWireUTF8Unchanged(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/plans/*.json")
	if len(files) == 0 {
		t.Fatal("no golden plans")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var p sandbox.Plan
		if err := json.Unmarshal(data, &p); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		want, _ := json.Marshal(Config{Plan: &p})
		got, err := bytesjson.Marshal(Config{Plan: &p})
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: wire encoding differs from encoding/json (%v)", f, err)
		}
	}
}

// TestFilterBytesRoundTrip: the seccomp program survives its trip to init.
func TestFilterBytesRoundTrip(t *testing.T) {
	// The default filter: NewPlan leaves seccomp.mode unset.
	p := &sandbox.Plan{Args: []string{"true"}}
	if err := sandbox.Resolve(p); err != nil || len(p.Resolved.Filter) == 0 {
		t.Fatalf("compile: %v", err)
	}
	prog := p.Resolved.Filter
	got := BytesFilter(FilterBytes(prog))
	if len(got) != len(prog) {
		t.Fatalf("got %d instructions, want %d", len(got), len(prog))
	}
	for i := range prog {
		if got[i] != prog[i] {
			t.Fatalf("instruction %d: got %+v, want %+v", i, got[i], prog[i])
		}
	}
	if BytesFilter([]byte{1, 2, 3}) != nil {
		t.Error("a truncated program was accepted")
	}
}

// TestConfigFrameBinary: the plan travels in the binary form (whose
// per-type start-up is what it saves), not in its JSON fallback.
func TestConfigFrameBinary(t *testing.T) {
	p := sandbox.Plan{Args: []string{"true"}, Mounts: []sandbox.Mount{{Kind: sandbox.MountBind, Src: "/a\xff", Dst: "/a\xff"}}}
	var buf bytes.Buffer
	if err := WriteFrame(&buf, Config{Plan: &p}); err != nil {
		t.Fatal(err)
	}
	if first := buf.Bytes()[4]; first == '{' {
		t.Fatalf("the config went as JSON: %s", buf.Bytes()[4:])
	}
	var got Config
	if err := ReadFrame(&buf, &got); err != nil || !reflect.DeepEqual(got.Plan, &p) {
		t.Fatalf("round trip: %v\n got %#v\nwant %#v", err, got.Plan, &p)
	}
}

// TestStatusFrameBinary: init's status messages travel in the binary form
// too, every field intact, bytes that are not UTF-8 included.
func TestStatusFrameBinary(t *testing.T) {
	m := Status{
		Error: &InitError{Msg: "bind /p\xff: no", Hint: "h", Command: sandbox.CommandNotFound, Name: "x\xfe"},
		PTY:   true, Started: 7, Held: true, Exit: &ExitInfo{Code: 3, Signal: 9},
		ProxyListener: true, DNSSocket: true, DNSListener: true,
		Conn: &ConnReply{ID: 5, Err: "e"}, Redirect: &Redirect{Err: "r"}, HelperDied: "pasta",
		Service: &ServiceEvent{Name: "db", State: "failed", Code: 1, Signal: 2, Reason: "why"},
	}
	data, err := bytesjson.MarshalFrame(m)
	if err != nil {
		t.Fatal(err)
	}
	if data[0] == '{' {
		t.Fatalf("the status went as JSON: %s", data)
	}
	var got Status
	if err := bytesjson.UnmarshalFrame(data, &got); err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip: %v\n got %#v\nwant %#v", err, got, m)
	}
}
