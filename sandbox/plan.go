package sandbox

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/internal/paths"
	"github.com/hutch-sandbox/hutch/sandbox/model"
	"github.com/hutch-sandbox/hutch/slirp"
)

// The plan's types live in sandbox/model, which hutch-init links
// without the rest of this package (its image, proxy and session
// dependencies); they are the same types under their old names here.
type (
	Plan         = model.Plan
	SeccompPlan  = model.SeccompPlan
	Rlimit       = model.Rlimit
	CgroupLimits = model.CgroupLimits
	Mount        = model.Mount
)

// Mount kinds (sandbox/model).
const (
	MountBind    = model.MountBind
	MountTmpfs   = model.MountTmpfs
	MountProc    = model.MountProc
	MountSysfs   = model.MountSysfs
	MountDevpts  = model.MountDevpts
	MountMqueue  = model.MountMqueue
	MountSymlink = model.MountSymlink
	MountFile    = model.MountFile
	MountHide    = model.MountHide
	MountRO      = model.MountRO
	MountSeal    = model.MountSeal
)

// Directories of the host root bound read-only when present: the system,
// but nothing that holds users' data or the host's runtime state.
var systemDirs = paths.SystemDirs

// defaultEnv is the allowlist of host variables a command sees.
var defaultEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LC_*", "TZ", "COLORTERM", "NO_COLOR"}

// secretPaths, relative to home, are always masked when a bind would make
// them visible: credentials that a dependency's install script should never
// read.
var secretPaths = []string{
	".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube", ".docker/config.json",
	".netrc", ".npmrc", ".pypirc", ".git-credentials", ".config/gh", ".config/hub",
	".local/share/keyrings", ".password-store", ".mozilla", ".config/google-chrome",
	".config/chromium", ".cargo/credentials", ".cargo/credentials.toml", ".gem/credentials",
	".vault-token", ".terraform.d/credentials.tfrc.json", ".config/hutch",
}

// defaultCaps is what a "root" user keeps inside: the file-owning set that
// container runtimes grant by default, without CAP_SYS_ADMIN, CAP_NET_ADMIN
// or CAP_NET_RAW.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_SETFCAP",
}

// Sizes of the small tmpfs mounts: /dev/shm as podman and docker size it,
// /run for pid files and sockets.
const (
	shmSize = 64 << 20
	runSize = 16 << 20
)

// Ports and paths hutch-init also uses (sandbox/model).
const (
	DefaultPath = model.DefaultPath
	ProxyPort   = model.ProxyPort
	DNSPort     = model.DNSPort
)

// resolvConf is the generated /etc/resolv.conf for a network mode; "" keeps
// the host's.
func resolvConf(mode string) string {
	switch mode {
	case NetworkHost:
		return ""
	case NetworkSlirp:
		return "nameserver " + slirp.SlirpDNS + "\n"
	case NetworkPasta:
		return "nameserver " + slirp.PastaDNS + "\n"
	case NetworkProxy:
		return "# hutch: network = proxy; hutch answers the names network.allow lets through,\n" +
			"# and every other name \"no such host\".\n" +
			"nameserver 127.0.0.1\n"
	}
	// A resolver with no server retries for minutes (EAI_AGAIN); hutch
	// answers at once instead, and names what was asked at exit.
	return "# hutch: this sandbox has no network (network = none); hutch answers every name \"no such host\"\n" +
		"nameserver 127.0.0.1\n"
}

func hostsFile(hostname string) string {
	return "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n"
}

// buildEnv clears the environment down to the allowlist, the spec's keep
// patterns and its explicit settings.
func buildEnv(spec Spec, host *Host, p *Plan) []string {
	keep := append(append([]string(nil), defaultEnv...), spec.Env.Keep...)
	env := map[string]string{}
	if spec.Bundle != nil {
		// A bundle's environment is exact: of the host's, only what
		// env.keep names.
		keep = spec.Env.Keep
	} else if host.Image != nil && p.Image != nil {
		// The host's paths mean nothing in an image: only its terminal
		// and locale settings (and what env.keep names) pass.
		keep = append([]string{"TERM", "LANG", "LC_*", "TZ", "COLORTERM", "NO_COLOR"}, spec.Env.Keep...)
	}
	for _, kv := range host.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		// A secret-looking variable passes only when named exactly. Asked
		// only of a variable a glob lets through: matching every host
		// variable against the secret patterns was 1.4% of hutch run's CPU.
		for _, pat := range keep {
			if ok, _ := path.Match(pat, k); ok && (pat == k || !secretEnv(k) || mutate.Off("env-secrets")) {
				env[k] = v
				break
			}
		}
	}
	if spec.Bundle != nil {
		for _, kv := range spec.Bundle.Env {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	} else if p.Image != nil {
		base := imageEnv(spec, host, p)
		for k, v := range base {
			if _, kept := env[k]; !kept || k == "PATH" || k == "HOME" || k == "USER" || k == "LOGNAME" {
				env[k] = v
			}
		}
	} else {
		env["HOME"] = host.Home
		if env["PATH"] == "" {
			env["PATH"] = DefaultPath
		}
		name := host.UserName
		if p.UID == 0 {
			name = "root"
		}
		if name != "" {
			env["USER"], env["LOGNAME"] = name, name
		}
		if host.Shell != "" && env["SHELL"] == "" {
			env["SHELL"] = host.Shell
		}
	}
	if spec.Bundle == nil {
		env["container"] = "hutch"
		// For prompts and scripts: PS1='${HUTCH:+[hutch] }\u@\h …'.
		env["HUTCH"] = "1"
	}
	if spec.Network.Mode == NetworkProxy {
		// Both spellings: curl reads only the lower-case http_proxy.
		proxyURL := fmt.Sprintf("http://127.0.0.1:%d", ProxyPort)
		for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
			env[k] = proxyURL
		}
		// The services are on the sandbox's own loopback, not behind
		// the proxy.
		noProxy := strings.Join(append([]string{"localhost", "127.0.0.1", "::1"}, serviceNames(spec)...), ",")
		env["NO_PROXY"], env["no_proxy"] = noProxy, noProxy
	}
	if spec.Network.Mode == NetworkNone {
		noRetries(env)
	}
	for k, v := range spec.Env.Set {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// noRetries tells npm not to retry a failed fetch, unless your own
// environment says otherwise: npm retries every network error, "no such
// host" included, 10 s and then 60 s later, so with no network at all
// (mode none) `npm install` failed after 72 s instead of 2, though hutch's
// DNS answered at once.
func noRetries(env map[string]string) {
	for k := range env {
		if strings.EqualFold(k, "npm_config_fetch_retries") {
			return
		}
	}
	env["npm_config_fetch_retries"] = "0"
}

// isWithin reports whether p is dir or beneath it.
func isWithin(dir, p string) bool { return paths.Within(dir, p) }

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// secretEnvPatterns name variables that usually hold credentials; globs
// never pass them, only an exact name in env.keep does. They are matched
// against the name in upper case: npm reads npm_config__auth and
// NPM_CONFIG__AUTH alike, and a lower-case my_token is no less a secret.
// "NPM_CONFIG_*:_AUTH*" is npm's per-registry form,
// npm_config_//registry.example/:_authToken.
var secretEnvPatterns = []string{"*_TOKEN", "*_SECRET", "*_SECRET_*", "*_PASSWORD", "*_PASSWD", "*_KEY", "*_API_KEY", "AWS_*", "SSH_AUTH_SOCK", "GPG_AGENT_INFO", "*_CREDENTIALS", "NPM_CONFIG__AUTH*", "NPM_CONFIG_*:_AUTH*"}

// SecretPaths lists, relative to home, the paths hutch always masks.
func SecretPaths() []string { return append([]string(nil), secretPaths...) }

// SecretEnv reports whether a variable's name says it holds a credential:
// such variables pass into a sandbox only when named exactly.
func SecretEnv(name string) bool { return secretEnv(name) }

func secretEnv(name string) bool {
	// path.Match's * stops at '/', which npm's per-registry names hold.
	name = strings.ReplaceAll(strings.ToUpper(name), "/", "_")
	for _, p := range secretEnvPatterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
