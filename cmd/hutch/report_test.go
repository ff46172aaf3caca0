package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/slirp/proxy"
)

// TestDenialReportEscapes: hostnames and methods in the denial report are
// what the sandbox asked the proxy for, so they are printed escaped
// (ESCAPED: a raw escape sequence, newline, bidi override or invalid UTF-8
// on the terminal); the --report JSON keeps them exact.
func TestDenialReportEscapes(t *testing.T) {
	hosts := []string{"\x1b]0;pwned\x07.test", "\x1b[2J.test", "a\nhutch: hint: forged.test", "evil\u202etxt.test", "bad\xff\xfe.test"}
	var ds []proxy.Denial
	for _, h := range hosts {
		ds = append(ds, proxy.Denial{Host: h, Port: 443, Method: "CONNECT\x1b[1m", Reason: "not in network.allow", Count: 1})
	}
	var out, errw strings.Builder
	app := &cli.App{Writer: &out, ErrWriter: &errw}
	set := flag.NewFlagSet("run", flag.ContinueOnError)
	report := filepath.Join(t.TempDir(), "report.json")
	set.String("report", report, "")
	c := cli.NewContext(app, set, nil)
	w, err := openReport(c)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := reportDenials(c, w, ds); err != nil {
		t.Fatal(err)
	}
	got := errw.String()
	for _, raw := range []string{"\x1b", "\x07", "\u202e", "\xff", "\nhutch: hint: forged"} {
		if strings.Contains(got, raw) {
			t.Errorf("ESCAPED: the report prints %q raw:\n%s", raw, got)
		}
	}
	for _, want := range []string{`hutch:   tcp  \x1b]0;pwned\a.test:443  (1× CONNECT\x1b[1m) not in network.allow`,
		`hutch:   tcp  a\nhutch: hint: forged.test:443`, `evil\u202etxt.test:443`, `bad\xff\xfe.test:443`, `"\x1b[2J.test"`} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %s:\n%s", want, got)
		}
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct{ Blocked []proxy.Denial }
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	for i, h := range hosts[:4] {
		if rep.Blocked[i].Host != h {
			t.Errorf("JSON host %q, want %q", rep.Blocked[i].Host, h)
		}
	}
}

// TestDenialReportProtocols: each refused destination is printed with its
// protocol, destination, name and rule; the suggested allow line has one
// entry a destination (a host refused on 80, 443 and by the DNS is one
// name; an address whose name hutch knows suggests the name), in the
// report too.
func TestDenialReportProtocols(t *testing.T) {
	ds := []proxy.Denial{
		{Host: "a.test", Port: 443, Proto: "tls", Method: "CONNECT", Reason: "no rule", Count: 2},
		{Host: "a.test", Proto: "dns", Reason: "no network.allow rule names a.test", Count: 1},
		{Host: "a.test", Port: 80, Proto: "http", Method: "GET", Reason: "no rule", Count: 1},
		{Host: "b.test", Port: 5432, Proto: "tcp", Reason: "no rule", Count: 1},
		{Host: "2001:db8::1", Port: 22, Proto: "tcp", Name: "git.test", Reason: "no rule", Count: 1},
	}
	var out, errw strings.Builder
	app := &cli.App{Writer: &out, ErrWriter: &errw}
	set := flag.NewFlagSet("run", flag.ContinueOnError)
	report := filepath.Join(t.TempDir(), "report.json")
	set.String("report", report, "")
	t.Chdir(t.TempDir()) // no hutch.toml: the hint is --allow
	c := cli.NewContext(app, set, nil)
	w, err := openReport(c)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := reportDenials(c, w, ds); err != nil {
		t.Fatal(err)
	}
	got := errw.String()
	for _, want := range []string{
		"hutch:   tls  a.test:443  (2× CONNECT) no rule\n",
		"hutch:   dns  a.test  (1×) no network.allow rule names a.test\n",
		"hutch:   tcp  [2001:db8::1]:22 (git.test)  (1×) no rule\n",
		`allow = ["a.test", "b.test:5432", "git.test:22"]`,
		"hutch run --allow a.test --allow b.test:5432 --allow git.test:22 …",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Blocked []proxy.Denial
		Allow   []string
		Where   string
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Blocked) != 5 || rep.Blocked[1].Proto != "dns" || strings.Join(rep.Allow, " ") != "a.test b.test:5432 git.test:22" || rep.Where != "" {
		t.Errorf("report JSON: %s", data)
	}
}
