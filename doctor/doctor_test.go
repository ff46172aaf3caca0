package doctor

import (
	"strings"
	"syscall"
	"testing"

	"github.com/hutch-sandbox/hutch/userns"
)

// goodFacts is a machine where everything works, for an unprivileged
// user; each case below breaks one thing.
func goodFacts() *doctorFacts {
	ok := probeOutcome{Tried: true}
	return &doctorFacts{
		UID: 1000, GID: 1000, User: "dev", Exe: "/usr/local/bin/hutch", Kernel: "6.8.0",
		MaxUserNS: 63000, UnprivClone: -1, AppArmorRestrict: -1,
		Sandbox:   ok,
		SubUIDs:   []userns.Range{{Start: 100000, Count: 65536}},
		SubGIDs:   []userns.Range{{Start: 100000, Count: 65536}},
		FreeSubID: 165536,
		NewUIDMap: helperFact{Path: "/usr/bin/newuidmap", Setuid: true},
		NewGIDMap: helperFact{Path: "/usr/bin/newgidmap", Setuid: true},
		IDMap:     ok,
		Overlay:   ok,
		Redirect:  ok,

		FuseOverlayfs: programFact{Path: "/usr/bin/fuse-overlayfs", Version: "1.10"},
		DevFuse:       deviceFact{Path: "/dev/fuse", Exists: true, Mode: 0o666, Owner: "root:root"},
		Slirp4netns:   programFact{Path: "/usr/bin/slirp4netns", Version: "1.2.0"},
		Pasta:         programFact{Path: "/usr/bin/pasta"},
		Tun:           deviceFact{Path: "/dev/net/tun", Exists: true, Mode: 0o666, Owner: "root:root"},
		Cgroup: cgroupFacts{Mount: "/sys/fs/cgroup", Unified: true, Own: "/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope",
			Owner: 1000, Writable: true, Controllers: []string{"cpu", "memory", "pids"}, Subtree: []string{"cpu", "memory", "pids"}},
		Runtime: runtimeFacts{Env: "/run/user/1000", Exists: true, IsDir: true, UID: 1000, Mode: 0o700, Dir: "/run/user/1000/hutch"},
		Images:  imageStoreFacts{Dir: "/home/dev/.local/share/hutch/images"},
	}
}

type doctorCase struct {
	name       string
	edit       func(f *doctorFacts)
	check      string // the check to look at
	want       CheckStatus
	wantDetail string // substrings, "|"-separated
	wantFix    string // substrings, "|"-separated; "-" means no fix
}

func TestDoctorChecks(t *testing.T) {
	eperm := probeOutcome{Tried: true, Start: true, Step: "creating the namespaces", Errno: syscall.EPERM, Err: "fork/exec /proc/self/exe: operation not permitted"}
	cases := []doctorCase{
		// image store
		{"image store ok", nil, checkImages, CheckOK, "takes overlay whiteouts and user.* xattrs", "-"},
		{"image store without whiteouts", func(f *doctorFacts) { f.Images.Whiteout = "operation not permitted" },
			checkImages, CheckWarn, "refuses overlay whiteouts|operation not permitted", "XDG_DATA_HOME|5.8"},
		{"image store without xattrs", func(f *doctorFacts) { f.Images.Xattr = "operation not supported" },
			checkImages, CheckWarn, "refuses user.* xattrs", "XDG_DATA_HOME"},
		{"image store unusable", func(f *doctorFacts) { f.Images.Err = "permission denied" },
			checkImages, CheckWarn, "images cannot be stored", "XDG_DATA_HOME"},
		// transparent proxy
		{"redirect ok", nil, checkRedirect, CheckOK, "is transparent here", "-"},
		{"redirect refused", func(f *doctorFacts) {
			f.Redirect = probeOutcome{Tried: true, Step: "installing the rules", Errno: syscall.EOPNOTSUPP, Err: "operation not supported"}
		}, checkRedirect, CheckWarn, "falls back to the explicit proxy|installing the rules: operation not supported", "CONFIG_NFT_NAT"},
		{"redirect not tried", func(f *doctorFacts) { f.Sandbox, f.Redirect = eperm, probeOutcome{} },
			checkRedirect, CheckWarn, "not tried", "-"},
		// user namespaces
		{"userns ok", nil, checkUserNS, CheckOK, "created user, mount, pid", "-"},
		{"max_user_namespaces 0", func(f *doctorFacts) {
			f.MaxUserNS = 0
			f.Sandbox = probeOutcome{Tried: true, Start: true, Errno: syscall.ENOSPC, Err: "no space left on device"}
		}, checkUserNS, CheckFail, "max_user_namespaces is 0", "sudo sysctl -w user.max_user_namespaces=15000|/etc/sysctl.d/"},
		{"debian unprivileged_userns_clone", func(f *doctorFacts) {
			f.UnprivClone = 0
			f.Sandbox = eperm
		}, checkUserNS, CheckFail, "unprivileged_userns_clone is 0", "sudo sysctl -w kernel.unprivileged_userns_clone=1"},
		{"ubuntu apparmor, start refused", func(f *doctorFacts) {
			f.AppArmorRestrict = 1
			f.Sandbox = eperm
		}, checkUserNS, CheckFail, "AppArmor restricts", "profile hutch /usr/local/bin/hutch flags=(unconfined)|userns,|sudo apparmor_parser -r /etc/apparmor.d/hutch|kernel.apparmor_restrict_unprivileged_userns=0"},
		{"ubuntu apparmor, mount refused inside", func(f *doctorFacts) {
			f.AppArmorRestrict = 1
			f.Sandbox = probeOutcome{Tried: true, Step: "making mounts private", Errno: syscall.EACCES, Err: "permission denied"}
		}, checkUserNS, CheckFail, "apparmor_restrict_unprivileged_userns = 1|making mounts private", "apparmor_parser"},
		{"ubuntu apparmor but a profile allows us", func(f *doctorFacts) { f.AppArmorRestrict = 1 }, checkUserNS, CheckOK, "created", "-"},
		{"max_net_namespaces 0", func(f *doctorFacts) {
			f.MaxNS = map[string]int{"user": 63000, "mount": 63000, "pid": 63000, "ipc": 63000, "uts": 63000, "net": 0, "cgroup": 63000}
			f.Sandbox = probeOutcome{Tried: true, Start: true, Errno: syscall.ENOSPC, Err: "no space left on device"}
		}, checkUserNS, CheckFail, "user.max_net_namespaces is 0: network namespaces are switched off", "sudo sysctl -w user.max_net_namespaces=15000|--network host"},
		{"max_pid_namespaces 0", func(f *doctorFacts) {
			f.MaxNS = map[string]int{"user": 63000, "mount": 63000, "pid": 0, "ipc": 63000, "uts": 63000, "net": 63000, "cgroup": 63000}
			f.Sandbox = probeOutcome{Tried: true, Start: true, Errno: syscall.ENOSPC, Err: "no space left on device"}
		}, checkUserNS, CheckFail, "user.max_pid_namespaces is 0: pid namespaces are switched off", "sudo sysctl -w user.max_pid_namespaces=15000"},
		{"limit reached, with every kind's limit", func(f *doctorFacts) {
			f.MaxNS = map[string]int{"user": 63000, "mount": 63000, "pid": 63000, "ipc": 63000, "uts": 63000, "net": 63000, "cgroup": 63000}
			f.Sandbox = probeOutcome{Tried: true, Start: true, Errno: syscall.ENOSPC, Err: "no space left on device"}
		}, checkUserNS, CheckFail, "a limit on namespaces is reached|user.max_net_namespaces = 63000", "max_user_namespaces=15000"},
		{"limit reached", func(f *doctorFacts) {
			f.Sandbox = probeOutcome{Tried: true, Start: true, Errno: syscall.ENOSPC, Err: "no space left on device"}
		}, checkUserNS, CheckFail, "limit on user namespaces (user.max_user_namespaces = 63000) is reached", "max_user_namespaces=15000"},
		{"container seccomp", func(f *doctorFacts) { f.Sandbox = eperm }, checkUserNS, CheckFail, "refused to create a user namespace|container", "seccomp=unconfined"},
		{"no pid namespace", func(f *doctorFacts) {
			f.Sandbox = probeOutcome{Tried: true, Start: true, Errno: syscall.EINVAL, Err: "invalid argument"}
		}, checkUserNS, CheckFail, "lacks a namespace", "CONFIG_USER_NS"},
		{"masked /proc", func(f *doctorFacts) {
			f.Sandbox = probeOutcome{Tried: true, Step: "mounting /proc", Errno: syscall.EPERM, Err: "operation not permitted"}
		}, checkUserNS, CheckFail, "refuses a new /proc", "unmasked /proc"},
		{"root passes a debian switch that stops users", func(f *doctorFacts) { f.UID, f.UnprivClone = 0, 0 },
			checkUserNS, CheckWarn, "root can create them|stops unprivileged users", "unprivileged_userns_clone=1"},
		{"root passes ubuntu's apparmor", func(f *doctorFacts) { f.UID, f.AppArmorRestrict = 0, 1 },
			checkUserNS, CheckWarn, "root can create them", "apparmor_parser"},

		// root
		{"not root", nil, checkUser, CheckOK, "running as dev (uid 1000), not root", "-"},
		{"root", func(f *doctorFacts) { f.UID, f.User = 0, "root" }, checkUser, CheckWarn, "running as root|meant for unprivileged users", "your own, unprivileged user"},
		{"root through sudo", func(f *doctorFacts) { f.UID, f.User, f.SudoUser = 0, "root", "dev" }, checkUser, CheckWarn, "running as root", "run hutch as dev, without sudo"},

		// subordinate ids
		{"subids ok", nil, checkSubIDs, CheckOK, "dev has 65536 uids from 100000 in /etc/subuid and 65536 gids from 100000", "-"},
		{"no subids", func(f *doctorFacts) { f.SubUIDs, f.SubGIDs = nil, nil }, checkSubIDs, CheckWarn,
			"no entries in /etc/subuid and /etc/subgid|maps only your own id",
			"sudo usermod --add-subuids 165536-231071 --add-subgids 165536-231071 dev"},
		{"no subids, empty files", func(f *doctorFacts) { f.SubUIDs, f.SubGIDs, f.FreeSubID = nil, nil, 100000 }, checkSubIDs, CheckWarn,
			"no entries", "sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 dev"},
		{"no subgids", func(f *doctorFacts) { f.SubGIDs = nil }, checkSubIDs, CheckWarn,
			"no subordinate gids in /etc/subgid", "sudo usermod --add-subgids 165536-231071 dev"},
		{"few subids", func(f *doctorFacts) { f.SubUIDs = []userns.Range{{Start: 100000, Count: 1000}} }, checkSubIDs, CheckWarn,
			"only 1000 subordinate uids and 65536 gids", "--add-subuids 165536-231071 dev"},
		{"no login name", func(f *doctorFacts) { f.User, f.SubUIDs, f.SubGIDs = "", nil, nil }, checkSubIDs, CheckWarn,
			"uid 1000 has no entries", "add the line 1000:165536:65536 to /etc/subuid and /etc/subgid"},
		{"unreadable subuid", func(f *doctorFacts) { f.SubIDErr = "reading /etc/subuid: permission denied" }, checkSubIDs, CheckWarn,
			"permission denied", "-"},

		// newuidmap/newgidmap
		{"helpers ok", nil, checkIDHelpers, CheckOK, "setuid root, and mapped your own id with 65536 subordinate uids and 65536 gids", "-"},
		{"helpers with file caps", func(f *doctorFacts) { f.NewUIDMap = helperFact{Path: "/usr/bin/newuidmap", Caps: true} },
			checkIDHelpers, CheckOK, "file capabilities", "-"},
		{"helpers not tried", func(f *doctorFacts) { f.IDMap = probeOutcome{} }, checkIDHelpers, CheckOK, "not tried: no subordinate ids", "-"},
		{"no newuidmap", func(f *doctorFacts) { f.NewUIDMap = helperFact{} }, checkIDHelpers, CheckWarn,
			"newuidmap is not installed", "sudo apt-get install uidmap"},
		{"newgidmap not setuid", func(f *doctorFacts) { f.NewGIDMap = helperFact{Path: "/usr/bin/newgidmap"} }, checkIDHelpers, CheckWarn,
			"/usr/bin/newgidmap is neither setuid root nor has file capabilities", "--reinstall uidmap|chmod u+s /usr/bin/newgidmap"},
		{"mapping refused", func(f *doctorFacts) {
			f.IDMap = probeOutcome{Tried: true, Step: "writing the id maps", Err: "newuidmap: uid range [0-65537) -> [100000-165537) not allowed"}
		}, checkIDHelpers, CheckWarn, "mapping your subordinate ids failed|not allowed", "lines for dev in /etc/subuid"},

		// kernel overlay
		{"overlay ok", nil, checkOverlay, CheckOK, "userxattr", "-"},
		{"overlay not tried", func(f *doctorFacts) { f.Overlay = probeOutcome{} }, checkOverlay, CheckWarn, "not tried", "-"},
		{"old kernel", func(f *doctorFacts) {
			f.Kernel = "5.10.0"
			f.Overlay = probeOutcome{Tried: true, Step: "mounting", Errno: syscall.EINVAL, Err: "invalid argument"}
		}, checkOverlay, CheckWarn, "Linux 5.10.0|needs Linux 5.11|fuse-overlayfs", "5.11"},
		{"no overlay module", func(f *doctorFacts) {
			f.Overlay = probeOutcome{Tried: true, Step: "mounting", Errno: syscall.ENODEV, Err: "no such device"}
		}, checkOverlay, CheckWarn, "no overlay filesystem", "sudo modprobe overlay"},
		{"delete fails without userxattr", func(f *doctorFacts) {
			f.Overlay = probeOutcome{Tried: true, Step: "deleting a lower directory through the overlay", Errno: syscall.EIO, Err: "input/output error"}
		}, checkOverlay, CheckWarn, "deleting a lower directory|input/output error", "-"},

		// programs
		{"fuse-overlayfs ok", nil, checkFuseOvl, CheckOK, "/usr/bin/fuse-overlayfs, version 1.10", "-"},
		{"fuse-overlayfs missing", func(f *doctorFacts) { f.FuseOverlayfs = programFact{} }, checkFuseOvl, CheckWarn,
			"not installed", "sudo apt-get install fuse-overlayfs fuse3"},
		{"pasta without version", nil, checkPasta, CheckOK, "/usr/bin/pasta, version not reported", "-"},
		{"pasta missing", func(f *doctorFacts) { f.Pasta = programFact{} }, checkPasta, CheckWarn,
			`network mode "pasta" is unavailable`, "sudo apt-get install passt"},
		{"old slirp4netns", func(f *doctorFacts) {
			f.Slirp4netns = programFact{Path: "/usr/bin/slirp4netns", Version: "0.3.0", Lacks: []string{"--exit-fd", "--ready-fd"}}
		},
			checkSlirp, CheckWarn, "version 0.3.0) lacks --exit-fd, --ready-fd", "newer slirp4netns"},

		// devices
		{"fuse ok", nil, checkDevFuse, CheckOK, "opens for reading and writing (mode 0666", "-"},
		{"fuse 0600", func(f *doctorFacts) { f.DevFuse.Mode, f.DevFuse.Errno = 0o600, syscall.EACCES }, checkDevFuse, CheckWarn,
			"/dev/fuse is mode 0600, owned by root:root: only root can open it|fuse-overlayfs cannot mount",
			"sudo chmod 0666 /dev/fuse|distributions ship it 0666"},
		{"fuse 0600 as root", func(f *doctorFacts) { f.UID, f.DevFuse.Mode = 0, 0o600 }, checkDevFuse, CheckWarn,
			"root can open /dev/fuse|unprivileged users cannot", "sudo chmod 0666 /dev/fuse"},
		{"fuse refused though 0666", func(f *doctorFacts) { f.DevFuse.Errno = syscall.EPERM }, checkDevFuse, CheckWarn,
			"mode 0666|opening it failed|device rules", "-"},
		{"no fuse", func(f *doctorFacts) { f.DevFuse = deviceFact{Path: "/dev/fuse"} }, checkDevFuse, CheckWarn,
			"/dev/fuse does not exist", "sudo modprobe fuse"},
		{"tun 0600", func(f *doctorFacts) { f.Tun.Mode, f.Tun.Errno = 0o600, syscall.EACCES }, checkTun, CheckWarn,
			"only root can open it|slirp4netns and pasta", "sudo chmod 0666 /dev/net/tun"},
		{"no tun", func(f *doctorFacts) { f.Tun = deviceFact{Path: "/dev/net/tun"} }, checkTun, CheckWarn,
			"does not exist", "modprobe tun|mknod -m 0666 /dev/net/tun c 10 200"},

		// cgroup v2
		{"cgroup ok", nil, checkCgroup, CheckOK, "delegated to you with the memory, pids and cpu controllers", "-"},
		{"cgroup v1 only", func(f *doctorFacts) { f.Cgroup = cgroupFacts{Owner: -1} }, checkCgroup, CheckWarn,
			"not mounted|limits will be unavailable", "systemd.unified_cgroup_hierarchy=1"},
		{"hybrid, not delegated", func(f *doctorFacts) {
			f.Cgroup = cgroupFacts{Mount: "/sys/fs/cgroup/unified", Own: "/", Owner: 0}
		}, checkCgroup, CheckWarn, "hybrid|not delegated to you (owned by uid 0)|limits will be unavailable",
			"systemd.unified_cgroup_hierarchy=1|systemd-run --user --scope -p Delegate=yes"},
		{"ssh session scope", func(f *doctorFacts) {
			f.Cgroup.Own, f.Cgroup.Owner, f.Cgroup.Writable = "/user.slice/user-1000.slice/session-3.scope", 0, false
		}, checkCgroup, CheckWarn, "session-3.scope is not delegated", "systemd-run --user --scope -p Delegate=yes"},
		{"controllers missing", func(f *doctorFacts) { f.Cgroup.Controllers = []string{"pids"} }, checkCgroup, CheckWarn,
			"the memory and cpu controllers are not delegated", "Delegate=cpu cpuset io memory pids|daemon-reload"},
		{"one controller missing", func(f *doctorFacts) { f.Cgroup.Controllers = []string{"pids", "cpu"} }, checkCgroup, CheckWarn,
			"the memory controller is not delegated", "user@.service.d"},
		{"shell in our cgroup", func(f *doctorFacts) { f.Cgroup.Subtree, f.Cgroup.OtherProcs = nil, true }, checkCgroup, CheckWarn,
			"holds other processes", "systemd-run --user --scope"},
		{"alone in our cgroup", func(f *doctorFacts) { f.Cgroup.Subtree = nil }, checkCgroup, CheckOK, "limits work", "-"},

		// XDG_RUNTIME_DIR
		{"runtime ok", nil, checkRuntime, CheckOK, "/run/user/1000 is yours, mode 0700|/run/user/1000/hutch", "-"},
		{"runtime unset", func(f *doctorFacts) { f.Runtime = runtimeFacts{Dir: "/tmp/hutch-1000"} }, checkRuntime, CheckWarn,
			"not set|/tmp/hutch-1000 instead", "sudo install -d -m 0700 -o 1000 -g 1000 /run/user/1000|export XDG_RUNTIME_DIR=/run/user/1000"},
		{"runtime relative", func(f *doctorFacts) { f.Runtime = runtimeFacts{Env: "run", Dir: "/tmp/hutch-1000"} }, checkRuntime, CheckWarn,
			"not an absolute path", "install -d"},
		{"runtime missing", func(f *doctorFacts) { f.Runtime = runtimeFacts{Env: "/run/user/1000", Dir: "/tmp/hutch-1000"} }, checkRuntime, CheckWarn,
			"is not a directory", "install -d"},
		{"runtime someone else's", func(f *doctorFacts) { f.Runtime.UID, f.Runtime.Dir = 0, "/tmp/hutch-1000" }, checkRuntime, CheckWarn,
			"belongs to uid 0", "install -d"},
		{"runtime 0755", func(f *doctorFacts) { f.Runtime.Mode = 0o755 }, checkRuntime, CheckWarn,
			"mode 0755, not 0700", "chmod 0700 /run/user/1000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := goodFacts()
			if tc.edit != nil {
				tc.edit(f)
			}
			d := diagnose(f)
			var got *Check
			for i := range d.Checks {
				if d.Checks[i].Name == tc.check {
					got = &d.Checks[i]
				}
			}
			if got == nil {
				t.Fatalf("no check named %q", tc.check)
			}
			if got.Status != tc.want {
				t.Errorf("status = %s, want %s (detail: %s)", got.Status, tc.want, got.Detail)
			}
			for _, sub := range strings.Split(tc.wantDetail, "|") {
				if !strings.Contains(got.Detail, sub) {
					t.Errorf("detail %q lacks %q", got.Detail, sub)
				}
			}
			switch {
			case tc.wantFix == "-":
				if got.Fix != "" {
					t.Errorf("fix = %q, want none", got.Fix)
				}
			default:
				for _, sub := range strings.Split(tc.wantFix, "|") {
					if !strings.Contains(got.Fix, sub) {
						t.Errorf("fix %q lacks %q", got.Fix, sub)
					}
				}
			}
			if tc.want != CheckOK && got.Fix == "" && tc.wantFix != "-" {
				t.Errorf("a %s without a fix", tc.want)
			}
		})
	}
}

// TestDoctorVerdict: only a failed check (user namespaces) makes the
// machine unable to run a sandbox; every check is reported, in order.
func TestDoctorVerdict(t *testing.T) {
	f := goodFacts()
	d := diagnose(f)
	if !d.OK {
		t.Errorf("OK = false on a good machine: %+v", d.Checks)
	}
	var names []string
	for _, c := range d.Checks {
		names = append(names, c.Name)
		if c.Status != CheckOK {
			t.Errorf("%s: %s on a good machine: %s", c.Name, c.Status, c.Detail)
		}
	}
	if strings.Join(names, ",") != strings.Join(CheckNames(), ",") {
		t.Errorf("checks %q, CheckNames() %q", names, CheckNames())
	}

	// A machine with nothing but user namespaces still runs a sandbox.
	f = goodFacts()
	f.UID, f.User = 0, "root"
	f.SubUIDs, f.SubGIDs, f.NewUIDMap, f.NewGIDMap, f.IDMap = nil, nil, helperFact{}, helperFact{}, probeOutcome{}
	f.Overlay = probeOutcome{Tried: true, Step: "mounting", Errno: syscall.EINVAL, Err: "invalid argument"}
	f.FuseOverlayfs, f.Slirp4netns, f.Pasta = programFact{}, programFact{}, programFact{}
	f.DevFuse, f.Tun = deviceFact{Path: "/dev/fuse"}, deviceFact{Path: "/dev/net/tun"}
	f.Cgroup, f.Runtime = cgroupFacts{Owner: -1}, runtimeFacts{Dir: "/tmp/hutch-0"}
	if d := diagnose(f); !d.OK {
		t.Errorf("OK = false with user namespaces working")
	}

	f = goodFacts()
	f.Sandbox = probeOutcome{Tried: true, Start: true, Errno: syscall.EPERM, Err: "operation not permitted"}
	if d := diagnose(f); d.OK {
		t.Errorf("OK = true without user namespaces")
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct{ name, out, want string }{
		{"slirp4netns", "slirp4netns version 1.2.0\ncommit: 656041d45cfca7a4176f6b7eed9e4fe6c11e8383\nlibslirp: 4.7.0\n", "1.2.0"},
		{"fuse-overlayfs", "fusermount3 version: 3.14.0\nfuse-overlayfs: version 1.10\nFUSE library version 3.14.0\n", "1.10"},
		{"pasta", "pasta unknown version\nCopyright Red Hat\n", ""},
		{"pasta", "pasta 2024_06_07.8a83b53\nCopyright Red Hat\n", "2024_06_07.8a83b53"},
		{"pasta", "pasta 0^20230310.g70c0765-1\n", "0^20230310.g70c0765-1"},
		{"slirp4netns", "", ""},
		{"slirp4netns", "usage: slirp4netns [OPTION]... PID|PATH TAPNAME\n", ""},
		{"tool", "tool v2.1, built today\n", "2.1"},
	} {
		if got := parseVersion(tc.name, tc.out); got != tc.want {
			t.Errorf("parseVersion(%q, %q) = %q, want %q", tc.name, tc.out, got, tc.want)
		}
	}
}

func TestFreeSubID(t *testing.T) {
	for _, tc := range []struct {
		file string
		want uint32
	}{
		{"", 100000},
		{"dev:100000:65536\n", 165536},
		{"a:100000:65536\nb:165536:65536\n", 231072},
		{"low:1000:10\n", 100000},
		{"# comment\nbad line\nx:y:z\nb:300000:1000\n", 301000},
		{"a:4294901760:65535\n", 0}, // no room left
	} {
		if got := freeSubID(tc.file); got != tc.want {
			t.Errorf("freeSubID(%q) = %d, want %d", tc.file, got, tc.want)
		}
	}
}

func TestSameMap(t *testing.T) {
	ms := []userns.Mapping{{Inside: 0, Outside: 1000, Size: 1}, {Inside: 1, Outside: 100000, Size: 65536}}
	kernel := "         0       1000          1\n         1     100000      65536\n"
	if !sameMap(kernel, ms) {
		t.Errorf("sameMap(%q) = false", kernel)
	}
	if sameMap("         0       1000          1\n", ms) {
		t.Errorf("sameMap of a shorter map = true")
	}
}
