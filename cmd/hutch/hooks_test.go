package main

import (
	"net"
	"os"
	"strings"

	"github.com/hutch-sandbox/hutch/sandbox/supervise"
)

// The test binary, acting as hutch, installs the proxy's DNS override from
// HUTCH_PROXY_RESOLVE ("name=ip,name=ip"). Only test binaries carry this
// file: a release hutch reads no such variable.
func init() {
	// HUTCH_TEST_NO_REDIRECT=1 keeps network mode proxy to its fallback,
	// the explicit proxy alone, as where nftables NAT is unavailable.
	supervise.NoRedirect = os.Getenv("HUTCH_TEST_NO_REDIRECT") == "1"
	v := os.Getenv("HUTCH_PROXY_RESOLVE")
	if v == "" {
		return
	}
	m := map[string]string{}
	for _, kv := range strings.Split(v, ",") {
		if k, ip, ok := strings.Cut(kv, "="); ok && net.ParseIP(ip) != nil {
			m[strings.ToLower(k)] = ip
		}
	}
	supervise.ProxyResolve = m
}
