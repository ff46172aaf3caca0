package proxy

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hutch-sandbox/hutch/internal/mutate"
)

// Learn mode (hutch run --learn FILE): every destination is allowed, and
// recorded here, at the one decision point that every path asks (decide
// for connections, decideName for the sandbox's DNS), so that the run
// ends with the minimal network.allow list that would have let it through.

// maxLearned bounds the distinct destinations a learn run keeps: the names
// come from inside the sandbox.
const maxLearned = 4096

// Use is one destination a learn run contacted: a name (or IP) on a port
// (0 for a DNS lookup), with what spoke to it and how often.
type Use struct {
	Host  string `json:"host"`
	Port  int    `json:"port"`
	Proto string `json:"protocol"`
	Count int    `json:"count"`
}

// Learner records the destinations of a learn run. It is safe for
// concurrent use.
type Learner struct {
	mu      sync.Mutex
	uses    map[Use]int // keyed with Count 0
	dropped int
}

func (l *Learner) record(host string, port int, proto string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.uses == nil {
		l.uses = map[Use]int{}
	}
	k := Use{Host: host, Port: port, Proto: proto}
	if _, ok := l.uses[k]; !ok && len(l.uses) >= maxLearned {
		l.dropped++
		return
	}
	l.uses[k]++
}

// Uses returns what was recorded, by host, port and protocol, and how many
// destinations were not kept (beyond maxLearned).
func (l *Learner) Uses() ([]Use, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Use, 0, len(l.uses))
	for k, n := range l.uses {
		k.Count = n
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Proto < b.Proto
	})
	return out, l.dropped
}

// decide returns "" when a connection to host:port may go ahead, else why
// not. In learn mode every destination may, and is recorded.
func (s *Server) decide(host string, port int, proto string) string {
	if s.Learn != nil {
		s.Learn.record(host, port, proto)
		return ""
	}
	return s.check(host, port)
}

// decideName returns "" when the sandbox's DNS may answer name, else why
// not: some rule could match it (or learn mode, which records it).
func (s *Server) decideName(name string) string {
	if s.Learn != nil {
		s.Learn.record(name, 0, "dns")
		return ""
	}
	if s.nameAllowed(name) || mutate.Off("dns-deny") {
		return ""
	}
	if len(s.Rules) == 0 {
		return "network.allow is empty"
	}
	return "no network.allow rule names " + name
}

// LearnedProfile is the minimal [network] section that allows what uses
// contacted, each entry commented with what used it. Only names that
// network.allow accepts are written (they come from inside: anything else
// is counted in a comment and left out, so nothing from inside can shape
// the file but a valid host name). A name that was only looked up, never
// connected to, is listed in a comment. hostLoopback is the learn run's
// setting, kept so that the profile reaches what the run reached.
func LearnedProfile(uses []Use, dropped int, hostLoopback bool) string {
	type entry struct {
		text, host string
		port       int
		what       []string
		lookedUp   bool // looked up only, never connected to
	}
	entries := map[string]*entry{}
	lookups := map[string][]string{}
	bad := 0
	for _, u := range uses {
		if _, err := ParseAllow([]string{u.Host}); (err != nil || strings.ContainsAny(u.Host, `"\`)) && !mutate.Off("learn-names") {
			bad++
			continue
		}
		what := fmt.Sprintf("%s ×%d", u.Proto, u.Count)
		if u.Port == 0 {
			lookups[u.Host] = append(lookups[u.Host], what)
			continue
		}
		text := u.Host
		if u.Port != 80 && u.Port != 443 {
			text = net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
		} else {
			what = fmt.Sprintf("%s %d ×%d", u.Proto, u.Port, u.Count)
		}
		e := entries[text]
		if e == nil {
			e = &entry{text: text, host: u.Host, port: u.Port}
			entries[text] = e
		}
		e.what = append(e.what, what)
	}
	var list []*entry
	for host, what := range lookups {
		connected := false
		for _, e := range entries {
			if e.host == host {
				e.what = append(e.what, what...)
				connected = true
			}
		}
		if !connected {
			list = append(list, &entry{text: host, host: host, what: what, lookedUp: true})
		}
	}
	for _, e := range entries {
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.lookedUp != b.lookedUp {
			return b.lookedUp
		}
		return a.host < b.host || a.host == b.host && a.port < b.port
	})

	var b strings.Builder
	b.WriteString("[network]\nmode = \"proxy\"\n")
	if hostLoopback {
		b.WriteString("host_loopback = true  # as the learn run had it\n")
	}
	b.WriteString("allow = [\n")
	for _, e := range list {
		q := strconv.Quote(e.text) + ","
		if e.lookedUp {
			fmt.Fprintf(&b, "  # %-30s # %s: looked up, never connected to\n", q, strings.Join(e.what, ", "))
			continue
		}
		fmt.Fprintf(&b, "  %-32s # %s\n", q, strings.Join(e.what, ", "))
	}
	b.WriteString("]\n")
	if bad > 0 {
		fmt.Fprintf(&b, "# %d destination(s) left out: not host names\n", bad)
	}
	if dropped > 0 {
		fmt.Fprintf(&b, "# %d more destination(s) not recorded (at most %d are)\n", dropped, maxLearned)
	}
	return b.String()
}
