package dns

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestTable(t *testing.T) {
	a := netip.MustParseAddr("127.0.0.1")
	b := netip.MustParseAddr("::ffff:127.0.0.2")
	var tb Table
	tb.Record("Example.COM.", []netip.Addr{a, b})
	tb.Record("example.com", []netip.Addr{a})
	tb.Record("cdn.example.net", []netip.Addr{a})
	tb.Record("", []netip.Addr{a})
	for _, tc := range []struct {
		addr netip.Addr
		want []string
	}{
		{a, []string{"example.com", "cdn.example.net"}},
		{netip.MustParseAddr("127.0.0.2"), []string{"example.com"}},
		{netip.MustParseAddr("127.0.0.3"), nil},
	} {
		if got := tb.Names(tc.addr); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Names(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestTableBounded(t *testing.T) {
	var tb Table
	base := netip.MustParseAddr("10.0.0.0")
	for i := 0; i < MaxTableAddrs+10; i++ {
		tb.Record("n.example", []netip.Addr{base})
		base = base.Next()
	}
	if got := tb.Names(base.Prev()); got != nil {
		t.Errorf("address beyond the bound kept: %q", got)
	}
	if got := tb.Names(netip.MustParseAddr("10.0.0.0")); len(got) != 1 {
		t.Errorf("first address lost: %q", got)
	}
}
