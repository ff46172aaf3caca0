package ocispec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/userns"
)

// base is a minimal valid config; each case edits it.
func base() map[string]any {
	return map[string]any{
		"ociVersion": "1.0.2",
		"process":    map[string]any{"args": []any{"sh"}, "cwd": "/", "user": map[string]any{"uid": 0, "gid": 0}},
		"root":       map[string]any{"path": "rootfs"},
		"linux":      map[string]any{"namespaces": []any{map[string]any{"type": "network"}, map[string]any{"type": "pid"}}},
	}
}

func sub(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name    string
		edit    func(map[string]any)
		check   func(*testing.T, *Bundle)
		wantErr string // a substring; "" means it parses
		warn    string // a substring of some warning
	}{
		{name: "minimal", edit: func(map[string]any) {}, check: func(t *testing.T, b *Bundle) {
			if b.Spec.Filesystem.Root != "dir:/b/rootfs" || b.Spec.Process.Workdir != "/" || b.HostNetwork || b.Spec.Bundle.Caps == nil {
				t.Errorf("got %+v", b.Spec)
			}
		}},
		{name: "absolute root, readonly", edit: func(m map[string]any) { m["root"] = map[string]any{"path": "/srv/r/../rootfs", "readonly": true} },
			check: func(t *testing.T, b *Bundle) {
				if b.Spec.Filesystem.Root != "dir:/srv/rootfs" || !b.Spec.Bundle.ReadOnlyRoot {
					t.Errorf("got %q %v", b.Spec.Filesystem.Root, b.Spec.Bundle.ReadOnlyRoot)
				}
			}},
		{name: "root /", edit: func(m map[string]any) { m["root"] = map[string]any{"path": "/"} }, wantErr: "root.path"},
		{name: "no root", edit: func(m map[string]any) { delete(m, "root") }, wantErr: "root.path: missing"},
		{name: "no args", edit: func(m map[string]any) { sub(m, "process")["args"] = []any{} }, wantErr: "process.args"},
		{name: "relative cwd", edit: func(m map[string]any) { sub(m, "process")["cwd"] = "work" }, wantErr: "process.cwd"},
		{name: "bad env", edit: func(m map[string]any) { sub(m, "process")["env"] = []any{"NOEQUALS"} }, wantErr: "process.env[0]"},
		{name: "env, user, groups", edit: func(m map[string]any) {
			p := sub(m, "process")
			p["env"] = []any{"A=1", "PATH=/bin"}
			p["user"] = map[string]any{"uid": 1000, "gid": 100, "additionalGids": []any{5, 6}}
		}, check: func(t *testing.T, b *Bundle) {
			bs := b.Spec.Bundle
			if !reflect.DeepEqual(bs.Env, []string{"A=1", "PATH=/bin"}) || bs.UID != 1000 || bs.GID != 100 || !reflect.DeepEqual(bs.Groups, []uint32{5, 6}) {
				t.Errorf("got %+v", bs)
			}
		}},
		{name: "version 2", edit: func(m map[string]any) { m["ociVersion"] = "2.0.0" }, wantErr: "ociVersion"},
		{name: "capabilities narrowed", edit: func(m map[string]any) {
			sub(m, "process")["capabilities"] = map[string]any{"bounding": []any{"CAP_CHOWN", "CAP_SYS_ADMIN", "net_bind_service", "CAP_NET_ADMIN"}}
		}, check: func(t *testing.T, b *Bundle) {
			if !reflect.DeepEqual(b.Spec.Bundle.Caps, []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}) {
				t.Errorf("caps %v", b.Spec.Bundle.Caps)
			}
		}, warn: "not granted"},
		{name: "rlimits", edit: func(m map[string]any) {
			sub(m, "process")["rlimits"] = []any{
				map[string]any{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 128},
				map[string]any{"type": "RLIMIT_STACK", "soft": 1 << 20, "hard": 1 << 21},
			}
		}, check: func(t *testing.T, b *Bundle) {
			if b.Spec.Limits.NoFile != 128 || !reflect.DeepEqual(b.Spec.Bundle.Rlimits, []sandbox.Rlimit{{Resource: "STACK", Soft: 1 << 20, Hard: 1 << 21}}) {
				t.Errorf("nofile %d, rlimits %v", b.Spec.Limits.NoFile, b.Spec.Bundle.Rlimits)
			}
		}},
		{name: "rlimit unknown", edit: func(m map[string]any) {
			sub(m, "process")["rlimits"] = []any{map[string]any{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}}
		}, wantErr: "process.rlimits[0]"},
		{name: "rlimit soft above hard", edit: func(m map[string]any) {
			sub(m, "process")["rlimits"] = []any{map[string]any{"type": "RLIMIT_CORE", "soft": 2, "hard": 1}}
		}, wantErr: "soft limit"},
		{name: "host network", edit: func(m map[string]any) {
			sub(m, "linux")["namespaces"] = []any{map[string]any{"type": "pid"}}
		}, check: func(t *testing.T, b *Bundle) {
			if !b.HostNetwork {
				t.Error("no network namespace should ask for the host's network")
			}
		}},
		{name: "join a namespace", edit: func(m map[string]any) {
			sub(m, "linux")["namespaces"] = []any{map[string]any{"type": "network", "path": "/proc/1/ns/net"}}
		}, wantErr: "joining the network namespace at /proc/1/ns/net is refused"},
		{name: "bad namespace type", edit: func(m map[string]any) {
			sub(m, "linux")["namespaces"] = []any{map[string]any{"type": "bogus"}}
		}, wantErr: "not a namespace type"},
		{name: "mounts", edit: func(m map[string]any) {
			m["mounts"] = []any{
				map[string]any{"destination": "/proc", "type": "proc", "source": "proc"},
				map[string]any{"destination": "/data", "type": "bind", "source": "/srv/data", "options": []any{"rbind", "ro", "nosuid", "noexec"}},
				map[string]any{"destination": "/work/../scratch", "type": "none", "source": "scratch", "options": []any{"bind"}},
				map[string]any{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []any{"size=64m"}},
			}
		}, check: func(t *testing.T, b *Bundle) {
			want := []sandbox.Bind{{Source: "/srv/data", Target: "/data", Mode: "ro", NoExec: true}, {Source: "/b/scratch", Target: "/scratch", Mode: "rw"}}
			if !reflect.DeepEqual(b.Spec.Filesystem.Binds, want) || !reflect.DeepEqual(b.Spec.Filesystem.Tmpfs, []string{"/tmp"}) {
				t.Errorf("binds %+v, tmpfs %v", b.Spec.Filesystem.Binds, b.Spec.Filesystem.Tmpfs)
			}
		}, warn: "size=64m"},
		{name: "mount relative destination", edit: func(m map[string]any) {
			m["mounts"] = []any{map[string]any{"destination": "data", "type": "bind", "source": "/srv"}}
		}, wantErr: "mounts[0]: destination"},
		{name: "mount over /", edit: func(m map[string]any) {
			m["mounts"] = []any{map[string]any{"destination": "/", "type": "bind", "source": "/srv"}}
		}, wantErr: "mounts[0]"},
		{name: "bind over /dev", edit: func(m map[string]any) {
			m["mounts"] = []any{map[string]any{"destination": "/dev", "type": "bind", "source": "/srv/dev"},
				map[string]any{"destination": "/sys", "type": "none", "source": "/sys", "options": []any{"rbind", "nosuid", "noexec", "nodev", "ro"}}}
		}, check: func(t *testing.T, b *Bundle) {
			if len(b.Spec.Filesystem.Binds) != 0 || len(b.Debug) == 0 {
				t.Errorf("binds %v, debug %v", b.Spec.Filesystem.Binds, b.Debug)
			}
		}, warn: "the bind of /srv/dev over /dev is not applied"},
		{name: "mount of another type", edit: func(m map[string]any) {
			m["mounts"] = []any{map[string]any{"destination": "/mnt", "type": "nfs", "source": "host:/x"}}
		}, wantErr: `a "nfs" mount`},
		{name: "unknown option warned", edit: func(m map[string]any) {
			m["mounts"] = []any{map[string]any{"destination": "/d", "type": "bind", "source": "/srv", "options": []any{"bind", "weird"}}}
		}, warn: `option "weird" not supported`},
		{name: "hooks refused", edit: func(m map[string]any) {
			m["hooks"] = map[string]any{"prestart": []any{map[string]any{"path": "/bin/true"}}}
		}, wantErr: "hooks"},
		{name: "unknown fields warned", edit: func(m map[string]any) {
			m["vm"] = map[string]any{}
			sub(m, "linux")["intelRdt"] = map[string]any{}
			sub(m, "process")["ioPriority"] = map[string]any{}
		}, warn: "linux.intelRdt: not supported"},
		{name: "masked and readonly paths", edit: func(m map[string]any) {
			sub(m, "linux")["maskedPaths"] = []any{"/proc/kcore", "/secret/../etc/shadow"}
			sub(m, "linux")["readonlyPaths"] = []any{"/proc/sys"}
		}, check: func(t *testing.T, b *Bundle) {
			if !reflect.DeepEqual(b.Spec.Filesystem.Hide, []string{"/proc/kcore", "/etc/shadow"}) || !reflect.DeepEqual(b.Spec.Bundle.ReadOnlyPaths, []string{"/proc/sys"}) {
				t.Errorf("hide %v, ro %v", b.Spec.Filesystem.Hide, b.Spec.Bundle.ReadOnlyPaths)
			}
		}},
		{name: "relative masked path", edit: func(m map[string]any) { sub(m, "linux")["maskedPaths"] = []any{"proc"} }, wantErr: "linux.maskedPaths[0]"},
		{name: "id maps", edit: func(m map[string]any) {
			sub(m, "linux")["uidMappings"] = []any{map[string]any{"containerID": 0, "hostID": 1000, "size": 1}}
			sub(m, "linux")["gidMappings"] = []any{map[string]any{"containerID": 0, "hostID": 1000, "size": 1}}
		}, check: func(t *testing.T, b *Bundle) {
			if !reflect.DeepEqual(b.Spec.Bundle.UIDMap, []userns.Mapping{{Inside: 0, Outside: 1000, Size: 1}}) {
				t.Errorf("uid map %v", b.Spec.Bundle.UIDMap)
			}
		}},
		{name: "id map overflowing", edit: func(m map[string]any) {
			sub(m, "linux")["uidMappings"] = []any{map[string]any{"containerID": 0, "hostID": 4294967295, "size": 2}}
		}, wantErr: "overflowing"},
		{name: "resources", edit: func(m map[string]any) {
			sub(m, "linux")["resources"] = map[string]any{"memory": map[string]any{"limit": 1 << 30}, "pids": map[string]any{"limit": 100}, "cpu": map[string]any{"quota": 50000, "period": 100000}}
		}, check: func(t *testing.T, b *Bundle) {
			if b.Memory != 1<<30 || b.Pids != 100 || b.CPU != 0.5 {
				t.Errorf("memory %d pids %d cpu %v", b.Memory, b.Pids, b.CPU)
			}
		}},
		{name: "resources not applied are warned", edit: func(m map[string]any) {
			sub(m, "linux")["resources"] = map[string]any{"blockIO": map[string]any{"weight": 10}, "memory": map[string]any{"limit": 1 << 30, "swap": 1 << 30}}
		}, warn: "linux.resources.blockIO: not supported", check: func(t *testing.T, b *Bundle) {
			if !strings.Contains(strings.Join(b.Warnings, "\n"), "linux.resources.memory.swap: not supported") {
				t.Errorf("warnings %q", b.Warnings)
			}
		}},
		{name: "seccomp kept raw", edit: func(m map[string]any) {
			sub(m, "linux")["seccomp"] = map[string]any{"defaultAction": "SCMP_ACT_ALLOW"}
		}, check: func(t *testing.T, b *Bundle) {
			if !strings.Contains(string(b.Seccomp), "SCMP_ACT_ALLOW") {
				t.Errorf("seccomp %s", b.Seccomp)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := base()
			c.edit(m)
			data, _ := json.Marshal(m)
			b, err := Parse(data, "/b")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.check != nil {
				c.check(t, b)
			}
			if c.warn != "" && !strings.Contains(strings.Join(b.Warnings, "\n"), c.warn) {
				t.Errorf("warnings %q lack %q", b.Warnings, c.warn)
			}
		})
	}
}

// TestParseHostile: malformed or hostile input is an error, never a
// panic or a partial bundle.
func TestParseHostile(t *testing.T) {
	for _, in := range []string{
		"", "null", "[]", `{"ociVersion":"1.0.2"} {}`, strings.Repeat("[", 100000),
		`{"ociVersion":"1.0.2","process":{"args":"sh"}}`,
		`{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/","user":{"uid":-1}},"root":{"path":"r"}}`,
		`{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/","env":["A\u0000=1"]},"root":{"path":"r"}}`,
	} {
		if b, err := Parse([]byte(in), "/b"); err == nil {
			t.Errorf("%.40q parsed: %+v", in, b)
		}
	}
}

func FuzzParse(f *testing.F) {
	data, _ := json.Marshal(base())
	f.Add(data)
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := Parse(in, "/b")
		if err == nil && (b.Spec.Filesystem.Root == "" || len(b.Spec.Args) == 0) {
			t.Fatalf("parsed without a root or a command: %+v", b.Spec)
		}
	})
}
