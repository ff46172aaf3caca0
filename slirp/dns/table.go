package dns

import (
	"net/netip"
	"strings"
	"sync"
)

// MaxTableAddrs bounds the addresses a Table keeps: the names come from
// inside the sandbox, and a command that resolves without end must not
// grow the supervisor without end.
const MaxTableAddrs = 4096

// Table records which names the sandbox resolved to which addresses, so
// that a connection redirected to the proxy can be traced back to the
// names it may be for. A connection to an address no allowed name gave is
// a connection to a bare IP. It is safe for concurrent use.
type Table struct {
	mu    sync.Mutex
	names map[netip.Addr][]string
	n     int
}

// Record notes that name resolved to addrs. Names are kept lower-case,
// without a trailing dot; once MaxTableAddrs addresses are kept, new
// addresses are dropped (their connections then look like bare IPs and
// are refused, which fails closed).
func (t *Table) Record(name string, addrs []netip.Addr) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if name == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.names == nil {
		t.names = map[netip.Addr][]string{}
	}
	for _, a := range addrs {
		a = a.Unmap()
		have := t.names[a]
		if len(have) == 0 && t.n >= MaxTableAddrs {
			continue
		}
		dup := false
		for _, h := range have {
			dup = dup || h == name
		}
		if dup {
			continue
		}
		if len(have) == 0 {
			t.n++
		}
		t.names[a] = append(have, name)
	}
}

// Names returns the names that resolved to addr, in the order recorded.
func (t *Table) Names(addr netip.Addr) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.names[addr.Unmap()]...)
}
