package sandbox

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hutch-sandbox/hutch/image"
	"github.com/hutch-sandbox/hutch/userns"
)

var update = flag.Bool("update", false, "rewrite golden plans in testdata/plans")

func testHost() *Host {
	return &Host{
		UID: 1000, GID: 1000, UserName: "dev", Home: "/home/dev", Shell: "/bin/bash",
		Cwd: "/home/dev/src/app",
		Env: []string{"PATH=/usr/bin:/bin", "HOME=/home/dev", "TERM=xterm", "LANG=C.UTF-8",
			"LC_ALL=C", "NPM_TOKEN=secret", "GITHUB_TOKEN=ghp_explicit", "AWS_SECRET_ACCESS_KEY=x", "SSH_AUTH_SOCK=/run/user/1000/ssh", "MY_VAR=1"},
		SubUIDs:   []userns.Range{{Start: 100000, Count: 65536}},
		SubGIDs:   []userns.Range{{Start: 100000, Count: 65536}},
		NewUIDMap: "/usr/bin/newuidmap", NewGIDMap: "/usr/bin/newgidmap",
		Root: []RootEntry{
			{Name: "bin", Dir: true, Link: "usr/bin"}, {Name: "boot", Dir: true}, {Name: "etc", Dir: true},
			{Name: "home", Dir: true}, {Name: "lib", Dir: true, Link: "usr/lib"}, {Name: "lib64", Dir: true, Link: "usr/lib64"},
			{Name: "opt", Dir: true}, {Name: "root", Dir: true}, {Name: "sbin", Dir: true, Link: "usr/sbin"},
			{Name: "usr", Dir: true}, {Name: "var", Dir: true}, {Name: "vmlinuz", Link: "boot/vmlinuz"},
		},
		RuntimeDir: "/run/user/1000/hutch",
		CgroupNS:   true,
		MemTotal:   16 << 30, InotifyInstances: 128, InotifyWatches: 65536,
	}
}

// withImage gives the host an opened image, as the CLI does for an image
// root: two layers, node's entrypoint, a non-root user.
func withImage(h *Host) {
	h.ResolvConf = "nameserver 192.0.2.53\n"
	h.Image = &ImageRoot{
		Name: "docker.io/library/node:22", ID: "sha256:" + strings.Repeat("ab", 32),
		Layers:     []string{"/home/dev/.local/share/hutch/images/layers/map-1/top/fs", "/home/dev/.local/share/hutch/images/layers/map-1/base/fs"},
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "NODE_VERSION=22.1.0", "HOME=/home/node"},
		Entrypoint: []string{"docker-entrypoint.sh"}, Cmd: []string{"node"}, WorkingDir: "/app",
		User: image.User{UID: 1000, GID: 1000, Name: "node", Home: "/home/node"}, UserSpec: "node",
	}
}

// TestPlanGolden pins whole plans; refresh with go test ./sandbox -update.
func TestPlanGolden(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		host func(*Host)
	}{
		{"default", Spec{Args: []string{"npm", "install"}}, nil},
		{"services", Spec{Args: []string{"make", "test"}, Services: []Service{
			{Name: "cache", Args: []string{"redis-server", "--port", "6379"}, Ready: "tcp:6379"},
			{Name: "db", Args: []string{"postgres", "-D", "/data"}, ReadyCommand: []string{"pg_isready", "-h", "127.0.0.1"},
				ReadyTimeout: 30 * time.Second, Data: "/home/dev/src/app/pgdata", After: []string{"cache"}},
		}}, nil},
		{"root-single", Spec{Args: []string{"id"}, Process: Process{User: "root", IDMap: "single"}}, nil},
		{"no-subuid", Spec{Args: []string{"id"}}, func(h *Host) { h.SubUIDs = nil }},
		{"binds", Spec{Args: []string{"make"},
			Filesystem: Filesystem{RW: []string{"~/.cache/go-build"}, RO: []string{"/srv/data"},
				Hide: []string{"/home/dev/src/app/.env"}, Tmpfs: []string{"/home/dev/src/app/node_modules"}},
			Env:     Env{Set: map[string]string{"CI": "1"}, Keep: []string{"MY_*", "*_TOKEN", "GITHUB_TOKEN"}},
			Process: Process{Hostname: "box"}, PreserveFDs: 2}, nil},
		{"limits", Spec{Args: []string{"make"},
			Limits:   Limits{Memory: 1 << 30, Pids: 512, CPU: 1.5, NoFile: 1024, NProc: 256, FSize: 1 << 30, Required: true},
			Process:  Process{Timeout: 30 * time.Minute},
			Security: Security{Seccomp: "~/seccomp.json", Nested: true}}, nil},
		{"home-ro", Spec{Args: []string{"ls"}, Filesystem: Filesystem{Home: "ro"}}, nil},
		{"in-home", Spec{}, func(h *Host) { h.Cwd = "/home/dev" }},
		{"proxy", Spec{Args: []string{"npm", "ci"}, Network: Network{Mode: "proxy", Allow: []string{"registry.npmjs.org"}, Ports: []string{"3000:3000"}}}, nil},
		{"slirp", Spec{Args: []string{"curl"}, Network: Network{Mode: "slirp4netns", HostLoopback: true, Ports: []string{"0.0.0.0:8080:80/tcp", "[::1]:8443:443"}}}, nil},
		{"host-network", Spec{Args: []string{"curl"}, Network: Network{Mode: "host"}}, nil},
		{"image", Spec{Args: []string{"npm", "test"}, Filesystem: Filesystem{Root: "image:node:22"}}, withImage},
		{"image-user-workdir", Spec{Filesystem: Filesystem{Root: "image:node:22", Hide: []string{"/home/dev/src/app/.env"},
			Tmpfs: []string{"/home/dev/src/app/node_modules"}, RO: []string{"/home/dev/src/app/vendor"}}, Process: Process{Workdir: "/src"},
			Network: Network{Mode: "host"}, Env: Env{Set: map[string]string{"CI": "1"}}}, withImage},
		{"image-no-subuid", Spec{Args: []string{"id"}, Filesystem: Filesystem{Root: "image:node:22"}}, func(h *Host) {
			withImage(h)
			h.SubUIDs = nil
		}},
		{"image-shell", Spec{Shell: true, Filesystem: Filesystem{Root: "image:node:22"}, Process: Process{User: "root"}}, withImage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := testHost()
			if tt.host != nil {
				tt.host(h)
			}
			p, err := NewPlan(tt.spec, h)
			if err != nil {
				t.Fatal(err)
			}
			checkGoldenPlan(t, tt.name, p)
		})
	}
}

// checkGoldenPlan compares p with testdata/plans/NAME.json, or rewrites it
// under -update.
func checkGoldenPlan(t *testing.T, name string, p *Plan) {
	t.Helper()
	got, _ := json.MarshalIndent(p, "", "  ")
	got = append(got, '\n')
	path := filepath.Join("..", "testdata", "plans", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("plan differs from %s (run with -update if intended):\n%s", path, got)
	}
}

func TestPlanInvariants(t *testing.T) {
	p, err := NewPlan(Spec{Args: []string{"sh"}, Filesystem: Filesystem{RW: []string{"~"}}, Env: Env{Keep: []string{"*"}}}, testHost())
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Join(p.Env, "\n")
	// keep = ["*"] passes MY_VAR but never a secret-named variable.
	if !strings.Contains(env, "MY_VAR=1") {
		t.Errorf("keep * did not pass MY_VAR")
	}
	for _, secret := range []string{"NPM_TOKEN", "AWS_SECRET", "SSH_AUTH_SOCK"} {
		if strings.Contains(env, secret) {
			t.Errorf("env passes %s", secret)
		}
	}
	// Binding all of home still masks the secrets beneath it, and hutch's
	// own state.
	hidden := map[string]bool{}
	for _, m := range p.Mounts {
		if m.Kind == MountHide {
			hidden[m.Dst] = true
		}
	}
	for _, s := range []string{"/home/dev/.ssh", "/home/dev/.aws", "/home/dev/.gnupg", "/home/dev/.config/hutch"} {
		if !hidden[s] {
			t.Errorf("%s is not masked under a bind of ~", s)
		}
	}
	if !p.MapHelpers || len(p.UIDMap) != 3 {
		t.Errorf("want a full keep-id map through helpers, got %+v", p.UIDMap)
	}
	if len(p.Caps) != 0 {
		t.Errorf("user self must have no capabilities, got %v", p.Caps)
	}
	// Parents are mounted before children.
	seen := map[string]int{}
	for i, m := range p.Mounts {
		seen[m.Dst] = i
	}
	if seen["/home/dev"] > seen["/home/dev/.ssh"] {
		t.Errorf("home mounted after its masks")
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		spec    Spec
		wantErr string // "" = valid
	}{
		{Spec{}, ""},
		{Spec{Process: Process{User: "admin"}}, `process.user: "admin" is not one of self, root`},
		{Spec{Process: Process{IDMap: "x"}}, `process.idmap: "x" is not one of auto, single`},
		{Spec{Network: Network{Mode: "slirp"}}, `network.mode: "slirp" is not one of none, host, proxy, slirp4netns, pasta`},
		{Spec{Network: Network{Mode: "pasta"}}, ""},
		{Spec{Network: Network{Mode: "none", Allow: []string{"x.org"}}}, `network.allow: only applies to mode = "proxy"`},
		{Spec{Network: Network{Mode: "proxy", Allow: []string{"http://x.org"}}}, `network.allow: allow entry "http://x.org" is a URL: give the host name alone, as in "x.org"`},
		{Spec{Network: Network{Mode: "none", HostLoopback: true}}, `network.host_loopback: only applies to modes proxy, slirp4netns and pasta`},
		{Spec{Network: Network{Mode: "host", Ports: []string{"8080:80"}}}, `network.ports: publishing ports makes no sense with the host's network`},
		{Spec{Network: Network{Learn: "l.toml"}}, ""},
		{Spec{Network: Network{Mode: "none", Learn: "l.toml", Allow: []string{"x.org"}, HostLoopback: true}}, ""},
		{Spec{Network: Network{Mode: "slirp4netns", Learn: "l.toml"}}, `network.learn: learn mode records what the proxy lets through: it needs mode "proxy"`},
		{Spec{Network: Network{Ports: []string{"8080:80", "127.0.0.1:8080:81"}}}, `host port 127.0.0.1:8080/tcp is published twice`},
		{Spec{Network: Network{Ports: []string{"80"}}}, `is not [HOSTIP:]HOSTPORT:PORT[/tcp|udp]`},
		{Spec{Network: Network{Ports: []string{"8080:80/udp"}}}, ``},
		{Spec{Network: Network{Ports: []string{"8080:80/udp", "8080:80"}}}, ``},
		{Spec{Network: Network{Ports: []string{"8080:80/udp", "8080:81/udp"}}}, `host port 127.0.0.1:8080/udp is published twice`},
		{Spec{Network: Network{Ports: []string{"8080:80/sctp"}}}, `protocol "sctp" is not tcp or udp`},
		{Spec{Network: Network{Ports: []string{"host:8080:80"}}}, `"host" is not an IP address`},
		{Spec{Network: Network{Ports: []string{"70000:80"}}}, `host port: "70000" is not a port number`},
		{Spec{Process: Process{Hostname: "-bad"}}, `process.hostname: "-bad"`},
		{Spec{Process: Process{Hostname: strings.Repeat("a", 65)}}, `is not a valid host name`},
		{Spec{Filesystem: Filesystem{RW: []string{"relative/path"}}}, `filesystem.rw: path "relative/path" must be absolute`},
		{Spec{Filesystem: Filesystem{RW: []string{"/"}}}, `filesystem.rw: "/" would cover the whole filesystem`},
		{Spec{Filesystem: Filesystem{RO: []string{"~/ok", "/ok"}}}, ""},
		{Spec{Filesystem: Filesystem{ProjectMode: "overlay"}}, ""},
		{Spec{Filesystem: Filesystem{ProjectMode: "overlay", Session: "../x"}}, `filesystem.session: "../x" is not a valid session name`},
		{Spec{Filesystem: Filesystem{Root: "image:"}}, `filesystem.root: "image:" names no image`},
		{Spec{Filesystem: Filesystem{Root: "image:alpine"}}, ``},
		{Spec{Filesystem: Filesystem{Root: "image:alpine"}, Process: Process{User: "node"}}, ``},
		{Spec{Filesystem: Filesystem{Root: "image:alpine"}, Process: Process{User: "1000:1000"}}, ``},
		{Spec{Filesystem: Filesystem{Root: "image:alpine"}, Process: Process{User: "a b"}}, `process.user: "a b" is not self, root, or an image user`},
		{Spec{Filesystem: Filesystem{Root: "image:alpine"}, Process: Process{User: "1000:"}}, `process.user: "1000:" is not self, root, or an image user`},
		{Spec{Process: Process{User: "node"}}, `process.user: "node" is not one of self, root (a user name or id needs an image root)`},
		{Spec{Filesystem: Filesystem{Root: "image:alpine"}, Process: Process{Workdir: "src"}}, `process.workdir: "src" must be an absolute path`},
		{Spec{Filesystem: Filesystem{Root: "image:alpine"}, Process: Process{Workdir: "/"}}, `process.workdir: the project cannot be bound over the image's /`},
		{Spec{Env: Env{Set: map[string]string{"A=B": "x"}}}, `env.set: variable name "A=B" is invalid`},
		{Spec{Env: Env{Keep: []string{"[bad"}}}, `env.keep: pattern "[bad" is not a valid glob`},
		{Spec{PreserveFDs: -1}, `preserve-fds: -1 is out of range`},
		{Spec{TTY: "sometimes"}, `tty: "sometimes" is not one of`},
	}
	for _, tt := range tests {
		err := tt.spec.Validate()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tt.spec, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%+v: error %v, want it to contain %q", tt.spec, err, tt.wantErr)
		}
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		in   string
		want *Port // nil: invalid
	}{
		{"8080:80", &Port{HostIP: "127.0.0.1", HostPort: 8080, Port: 80, Proto: "tcp"}},
		{"0.0.0.0:8080:80/tcp", &Port{HostIP: "0.0.0.0", HostPort: 8080, Port: 80, Proto: "tcp"}},
		{"[::1]:8443:443", &Port{HostIP: "::1", HostPort: 8443, Port: 443, Proto: "tcp"}},
		{"8080:80/TCP", &Port{HostIP: "127.0.0.1", HostPort: 8080, Port: 80, Proto: "tcp"}},
		{"8080", nil},
		{"a:80", nil},
		{"8080:0", nil},
		{"1.2.3:8080:80", nil},
		{"[::1:8080:80", nil},
		{"8080:80/udp", &Port{HostIP: "127.0.0.1", HostPort: 8080, Port: 80, Proto: "udp"}},
		{"0.0.0.0:5353:53/UDP", &Port{HostIP: "0.0.0.0", HostPort: 5353, Port: 53, Proto: "udp"}},
	}
	for _, tt := range tests {
		got, err := ParsePort(tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("ParsePort(%q) = %+v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != *tt.want {
			t.Errorf("ParsePort(%q) = %+v, %v; want %+v", tt.in, got, err, *tt.want)
		}
	}
}

// TestSecretEnvAnyCase: a secret-looking name is secret in any case, as
// the tools reading it see it (npm reads npm_config__auth and
// NPM_CONFIG__AUTH alike), and a glob in env.keep never passes it. The npm
// profile keeps npm_config_* and NPM_CONFIG_*.
func TestSecretEnvAnyCase(t *testing.T) {
	secret := []string{"NPM_CONFIG__AUTH", "npm_config__auth", "npm_config__authToken", "Npm_Config__AuthToken",
		"npm_config_//registry.npmjs.org/:_authToken", "npm_config_//r.example/:_auth", "npm_config__password",
		"npm_config_//r.example/:_password", "github_token", "aws_secret_access_key", "ssh_auth_sock"}
	plain := []string{"npm_config_registry", "NPM_CONFIG_CACHE", "npm_config_fund", "PATH"}
	host := testHost()
	host.Env = nil
	for _, n := range append(append([]string(nil), secret...), plain...) {
		host.Env = append(host.Env, n+"=v")
	}
	spec := Spec{Args: []string{"true"}, Env: Env{Keep: []string{"npm_config_*", "NPM_CONFIG_*", "*"}}}
	plan, err := NewPlan(spec, host)
	if err != nil {
		t.Fatal(err)
	}
	passed := map[string]bool{}
	for _, kv := range plan.Env {
		k, _, _ := strings.Cut(kv, "=")
		passed[k] = true
	}
	for _, n := range secret {
		if !SecretEnv(n) {
			t.Errorf("SecretEnv(%q) = false", n)
		}
		if passed[n] {
			t.Errorf("ESCAPED: %s passed through a glob", n)
		}
	}
	for _, n := range plain {
		if SecretEnv(n) || !passed[n] {
			t.Errorf("%s: secret=%v passed=%v, want a plain variable that passes", n, SecretEnv(n), passed[n])
		}
	}
	// Named exactly, in its own case, a secret passes (your own choice).
	spec.Env.Keep = []string{"npm_config__authToken"}
	if plan, err = NewPlan(spec, host); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(plan.Env, "npm_config__authToken=v") {
		t.Errorf("env.keep naming npm_config__authToken exactly does not pass it: %q", plan.Env)
	}
}

// TestNoRetries: with no network npm is told not to retry (it retries "no
// such host" for 72 s), unless the environment already says, in any case.
func TestNoRetries(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "0"},
		{map[string]string{"NPM_CONFIG_FETCH_RETRIES": "5"}, ""},
		{map[string]string{"npm_config_fetch_retries": "3"}, "3"},
	} {
		noRetries(tc.env)
		if got := tc.env["npm_config_fetch_retries"]; got != tc.want {
			t.Errorf("%v: npm_config_fetch_retries=%q, want %q", tc.env, got, tc.want)
		}
	}
}
