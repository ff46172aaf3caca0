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
