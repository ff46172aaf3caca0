package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/hutch-sandbox/hutch/doctor"
)

// TestDoctorJSON: --json is one valid object with every check, in order,
// and the exit status agrees with its "ok".
func TestDoctorJSON(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: exe, Args: []string{"hutch", "doctor", "--json"}, Env: os.Environ()}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var d struct {
		OK     *bool `json:"ok"`
		Checks []struct {
			Name, Status, Detail string
			Fix                  *string
		} `json:"checks"`
	}
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("decoding --json: %v\n%s", err, stdout.String())
	}
	if dec.More() {
		t.Errorf("--json printed more than one value")
	}
	if d.OK == nil {
		t.Fatalf(`no "ok" in %s`, stdout.String())
	}
	if want := map[bool]int{true: 0, false: exitHutch}[*d.OK]; code != want {
		t.Errorf("ok = %v but exit status %d, want %d; stderr:\n%s", *d.OK, code, want, stderr.String())
	}
	var names []string
	for _, c := range d.Checks {
		names = append(names, c.Name)
		switch c.Status {
		case "ok", "warn", "fail":
		default:
			t.Errorf("%s: status %q", c.Name, c.Status)
		}
		if c.Detail == "" {
			t.Errorf("%s: no detail", c.Name)
		}
		if c.Fix == nil {
			t.Errorf("%s: no fix field", c.Name)
		}
	}
	if got, want := strings.Join(names, ", "), strings.Join(doctor.CheckNames(), ", "); got != want {
		t.Errorf("checks: %s\nwant:   %s", got, want)
	}
}

// TestDoctorPrint pins the text layout: status and name in columns, the
// detail wrapped under itself, the fix below it, commands never wrapped.
func TestDoctorPrint(t *testing.T) {
	d := &doctor.Diagnosis{OK: true, Checks: []doctor.Check{
		{Name: "user namespaces", Status: doctor.CheckOK, Detail: "works"},
		{Name: "/dev/fuse", Status: doctor.CheckWarn,
			Detail: "/dev/fuse is mode 0600, owned by root:root: only root can open it, so fuse-overlayfs cannot mount, and this sentence runs on",
			Fix:    "sudo chmod 0666 /dev/fuse\n(distributions ship it 0666)"},
	}}
	var b bytes.Buffer
	printDiagnosis(&b, d)
	want := `ok    user namespaces  works
warn  /dev/fuse        /dev/fuse is mode 0600, owned by root:root: only root can open it, so
                       fuse-overlayfs cannot mount, and this sentence runs on
                       fix: sudo chmod 0666 /dev/fuse
                            (distributions ship it 0666)

hutch can run sandboxes here. The warning above says what is missing and how to fix it.
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	d.OK = false
	d.Checks[0].Status = doctor.CheckFail
	b.Reset()
	printDiagnosis(&b, d)
	if strings.Contains(b.String(), "can run") {
		t.Errorf("a failed diagnosis says it can run:\n%s", b.String())
	}
}
