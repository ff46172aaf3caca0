package sandbox

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestServiceOrder(t *testing.T) {
	svc := func(name string, after ...string) Service {
		return Service{Name: name, Args: []string{name}, After: after}
	}
	tests := []struct {
		name  string
		svcs  []Service
		order string // names in start order; "" with cycle
		cycle string
	}{
		{"none", nil, "", ""},
		{"by name", []Service{svc("web"), svc("db"), svc("cache")}, "cache db web", ""},
		{"after first", []Service{svc("a", "z"), svc("z")}, "z a", ""},
		{"chain", []Service{svc("a", "b"), svc("b", "c"), svc("c")}, "c b a", ""},
		{"diamond", []Service{svc("app", "db", "cache"), svc("db", "cache"), svc("cache")}, "cache db app", ""},
		{"unknown after is skipped here", []Service{svc("a", "nope")}, "a", ""},
		{"self", []Service{svc("a", "a")}, "", "a a"},
		{"cycle", []Service{svc("a", "b"), svc("b", "c"), svc("c", "a")}, "", "a b c a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cyc := ServiceOrder(tt.svcs)
			var names []string
			for _, s := range got {
				names = append(names, s.Name)
			}
			if strings.Join(names, " ") != tt.order || strings.Join(cyc, " ") != tt.cycle {
				t.Errorf("order %q cycle %q, want %q %q", names, cyc, tt.order, tt.cycle)
			}
		})
	}
}

func TestServiceValidate(t *testing.T) {
	ok := Service{Name: "db", Args: []string{"postgres"}}
	with := func(f func(*Service)) []Service {
		s := ok
		f(&s)
		return []Service{s}
	}
	tests := []struct {
		svcs    []Service
		wantErr string
	}{
		{[]Service{ok}, ""},
		{with(func(s *Service) { s.Name = "Db" }), `services.Db.command: "Db" is not a usable service name`},
		{with(func(s *Service) { s.Name = "localhost" }), `is not a usable service name`},
		{with(func(s *Service) { s.Name = "hutch" }), `is not a usable service name`}, // the sandbox's hostname
		{with(func(s *Service) { s.Args = nil }), `services.db.command: service "db" has no command`},
		{with(func(s *Service) { s.Ready = "tcp:0" }), `services.db.ready: "0" is not a port number`},
		{with(func(s *Service) { s.Ready = "http:80" }), `services.db.ready: "http:80" is not tcp:PORT`},
		{with(func(s *Service) { s.ReadyTimeout = -time.Second }), `services.db.ready_timeout: -1s is negative`},
		{with(func(s *Service) { s.Data = "rel" }), `services.db.data: path "rel" must be absolute`},
		{with(func(s *Service) { s.After = []string{"x"} }), `services.db.after: "x" names no service`},
		{with(func(s *Service) { s.Env = map[string]string{"A=B": "c"} }), `services.db.env: variable name "A=B" is invalid`},
		{with(func(s *Service) { s.Image = "redis" }), ""},
		{with(func(s *Service) { s.Image, s.Args = "redis", nil }), ""}, // the image's Entrypoint and Cmd
		{with(func(s *Service) { s.Image = "https://x/redis" }), `services.db.image: "https://x/redis" is not an image reference`},
		{with(func(s *Service) { s.Image, s.Args = "redis", []string{""} }), `services.db.command: service "db" has no command`},
		{[]Service{ok, ok}, `service "db" is defined twice`},
		{[]Service{{Name: "a", Args: []string{"a"}, After: []string{"b"}}, {Name: "b", Args: []string{"b"}, After: []string{"a"}}}, `services.a.after: services wait for each other: a → b → a`},
	}
	for _, tt := range tests {
		s := Spec{Services: tt.svcs}
		err := s.Validate()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%+v: got %v, want %q", tt.svcs, err, tt.wantErr)
		}
	}
}

// TestServicePlan: a service's own root shows neither the project nor
// the command's binds, nor the home; it gets /data, the generated files
// naming every service, and the command's identity.
func TestServicePlan(t *testing.T) {
	spec := Spec{Args: []string{"make", "test"},
		Filesystem: Filesystem{RW: []string{"~/cache"}, RO: []string{"/srv"}},
		Network:    Network{Mode: NetworkProxy, Allow: []string{"example.org"}},
		Env:        Env{Set: map[string]string{"A": "1"}},
		Services: []Service{
			{Name: "web", Args: []string{"web"}, After: []string{"db"}, Env: map[string]string{"A": "2"}},
			{Name: "db", Args: []string{"postgres"}, Ready: "tcp:5432", Data: "/home/dev/src/app/pg"},
		}}
	p, err := NewPlan(spec, testHost())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Services) != 2 || p.Services[0].Name != "db" || p.Services[1].Name != "web" {
		t.Fatalf("want db then web, got %+v", p.Services)
	}
	db, web := p.Services[0], p.Services[1]
	if db.ReadyPort != 5432 || db.ReadyTimeout != DefaultReadyTimeout || db.Cwd != ServiceDataDir {
		t.Errorf("db: ready %d timeout %v cwd %s", db.ReadyPort, db.ReadyTimeout, db.Cwd)
	}
	for _, sv := range p.Services {
		var hosts string
		for _, m := range sv.Mounts {
			if m.Dst == "/etc/hosts" {
				hosts = m.Data
			}
			switch {
			case m.Src == "/home/dev/src/app", m.Dst == "/home/dev/src/app", m.Src == "/home/dev/cache", m.Src == "/srv":
				t.Errorf("%s: the command's bind %+v reaches the service", sv.Name, m)
			case m.Dst == "/home/dev" && m.Kind != MountTmpfs:
				t.Errorf("%s: the home is %+v, not an empty tmpfs", sv.Name, m)
			case m.Kind == MountOverlay:
				t.Errorf("%s: an overlay %+v (the command's layers)", sv.Name, m)
			}
		}
		if !strings.Contains(hosts, "127.0.0.1\tdb\n") || !strings.Contains(hosts, "127.0.0.1\tweb\n") {
			t.Errorf("%s: /etc/hosts %q does not name every service", sv.Name, hosts)
		}
		if !slices.Contains(sv.Env, "HUTCH_SERVICE="+sv.Name) || !slices.Contains(sv.Env, "NO_PROXY=localhost,127.0.0.1,::1,web,db") {
			t.Errorf("%s: env %v", sv.Name, sv.Env)
		}
	}
	data := map[string]Mount{}
	for _, sv := range p.Services {
		for _, m := range sv.Mounts {
			if m.Dst == ServiceDataDir {
				data[sv.Name] = m
			}
		}
	}
	if m := data["db"]; m.Kind != MountBind || m.Src != "/home/dev/src/app/pg" || m.RO {
		t.Errorf("db's data: %+v", m)
	}
	if m := data["web"]; m.Kind != MountTmpfs || !m.Shared {
		t.Errorf("web's data: %+v", m)
	}
	if !slices.Contains(web.Env, "A=2") || !slices.Contains(db.Env, "A=1") {
		t.Errorf("env.set under the service's env: web %v db %v", web.Env, db.Env)
	}
	// The command sees the names too, and its proxy lets them by.
	var hosts string
	for _, m := range p.Mounts {
		if m.Dst == "/etc/hosts" {
			hosts = m.Data
		}
	}
	if !strings.Contains(hosts, "127.0.0.1\tdb\n") || !slices.Contains(p.Env, "NO_PROXY=localhost,127.0.0.1,::1,web,db") {
		t.Errorf("command: hosts %q env %v", hosts, p.Env)
	}
}

// TestServiceImagePlan: a service with an image runs on its layers (an
// overlay at /, first), with none of the host's system directories nor the
// home; its command line follows docker's rules; its environment starts
// from the image's. NewPlan refuses an image Prepare did not open.
func TestServiceImagePlan(t *testing.T) {
	spec := Spec{Args: []string{"make"}, Services: []Service{
		{Name: "cache", Image: "redis:7", Args: []string{"redis-server", "--port", "6379"}},
		{Name: "web", Image: "web:1"},
	}}
	if _, err := NewPlan(spec, testHost()); err == nil || !strings.Contains(err.Error(), `the image redis:7 of service "cache" was not opened`) {
		t.Fatalf("unopened image: %v", err)
	}
	host := testHost()
	host.ServiceImages = map[string]*ImageRoot{
		"cache": {Name: "redis:7", ID: "sha256:1", Layers: []string{"/store/l2", "/store/l1"}, Entrypoint: []string{"docker-entrypoint.sh"}, Cmd: []string{"redis-server"}, Env: []string{"PATH=/usr/local/bin:/bin", "REDIS_VERSION=7"}},
		"web":   {Name: "web:1", ID: "sha256:2", Layers: []string{"/store/w"}, Cmd: []string{"httpd", "-f"}},
	}
	p, err := NewPlan(spec, host)
	if err != nil {
		t.Fatal(err)
	}
	cache, web := p.Services[0], p.Services[1]
	if got := strings.Join(cache.Args, " "); got != "docker-entrypoint.sh redis-server --port 6379" {
		t.Errorf("cache's args %q: want the entrypoint, then the command", got)
	}
	if got := strings.Join(web.Args, " "); got != "httpd -f" {
		t.Errorf("web's args %q: want the image's Cmd", got)
	}
	if !slices.Contains(cache.Env, "REDIS_VERSION=7") || !slices.Contains(cache.Env, "PATH=/usr/local/bin:/bin") || !slices.Contains(cache.Env, "HUTCH_SERVICE=cache") {
		t.Errorf("cache's env %v: want the image's, and HUTCH_SERVICE", cache.Env)
	}
	if cache.Image == nil || cache.Image.Name != "redis:7" || p.Image != nil {
		t.Errorf("plan images: service %+v, command %+v", cache.Image, p.Image)
	}
	m0 := cache.Mounts[0]
	if m0.Kind != MountOverlay || m0.Dst != "/" || !slices.Equal(m0.Lower, []string{"/store/l2", "/store/l1"}) {
		t.Errorf("cache's first mount %+v: want the image's overlay at /", m0)
	}
	for _, m := range cache.Mounts[1:] {
		if m.Src == "/usr" || m.Dst == "/usr" || m.Dst == host.Home || m.Kind == MountOverlay {
			t.Errorf("cache: %+v on an image root", m)
		}
	}
	// The command's own root stays the host's.
	for _, m := range p.Mounts {
		if m.Kind == MountOverlay {
			t.Errorf("the command's plan has the service's overlay %+v", m)
		}
	}
	host.ServiceImages["web"].Cmd = nil
	if _, err := NewPlan(spec, host); err == nil || !strings.Contains(err.Error(), `service "web" has no command, and its image web:1 has no Entrypoint or Cmd`) {
		t.Errorf("an image with nothing to run: %v", err)
	}
}
