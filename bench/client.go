package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clientMain is `hutch-bench client ...`, run inside sandboxes:
//
//	client http [-n N] [-proxy-env] URL   N sequential GETs, a new connection each; prints JSON
//	client exec PROG ARGS...              exec PROG with "@gateway" replaced by the default gateway
//
// "@gateway" in a URL or argument is the sandbox's default route (pasta maps
// the host's loopback there).
func clientMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: hutch-bench client http|exec ...")
		return 2
	}
	var err error
	switch args[0] {
	case "http":
		err = clientHTTP(args[1:])
	case "exec":
		err = clientExec(args[1:])
	default:
		err = fmt.Errorf("unknown client command %q", args[0])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "hutch-bench client: %v\n", err)
		return 1
	}
	return 0
}

// httpResult is what `client http` prints.
type httpResult struct {
	N       int       `json:"n"`
	Bytes   int64     `json:"bytes"`
	Seconds float64   `json:"seconds"`
	MS      []float64 `json:"ms"` // per request
}

func clientHTTP(args []string) error {
	fs := flag.NewFlagSet("http", flag.ContinueOnError)
	n := fs.Int("n", 1, "requests")
	proxyEnv := fs.Bool("proxy-env", false, "send every request through $HTTP_PROXY, whatever NO_PROXY says")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("want one URL")
	}
	u, err := withGateway(fs.Arg(0))
	if err != nil {
		return err
	}
	tr := &http.Transport{DisableKeepAlives: true, DisableCompression: true, Proxy: nil}
	if *proxyEnv {
		p := os.Getenv("HTTP_PROXY")
		if p == "" {
			return fmt.Errorf("-proxy-env: HTTP_PROXY is not set")
		}
		pu, err := url.Parse(p)
		if err != nil {
			return err
		}
		tr.Proxy = http.ProxyURL(pu)
	}
	c := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	res := httpResult{N: *n}
	buf := make([]byte, 1<<20)
	start := time.Now()
	for i := 0; i < *n; i++ {
		t0 := time.Now()
		resp, err := c.Get(u)
		if err != nil {
			return err
		}
		for {
			k, err := resp.Body.Read(buf)
			res.Bytes += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				resp.Body.Close()
				return err
			}
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		res.MS = append(res.MS, ms(time.Since(t0)))
	}
	res.Seconds = time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(res)
}

func clientExec(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("exec: want a program")
	}
	for i, a := range args {
		var err error
		if args[i], err = withGateway(a); err != nil {
			return err
		}
	}
	p, err := exec.LookPath(args[0])
	if err != nil {
		return err
	}
	return syscall.Exec(p, args, os.Environ())
}

func withGateway(s string) (string, error) {
	if !strings.Contains(s, "@gateway") {
		return s, nil
	}
	gw, err := defaultGateway()
	if err != nil {
		return "", err
	}
	return strings.ReplaceAll(s, "@gateway", gw), nil
}

// defaultGateway reads the IPv4 default route from /proc/net/route.
func defaultGateway() (string, error) {
	data, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 2 && f[1] == "00000000" {
			v, err := strconv.ParseUint(f[2], 16, 32)
			if err != nil {
				return "", err
			}
			// Little-endian hex, as the kernel prints it.
			return net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)).String(), nil
		}
	}
	return "", fmt.Errorf("no default route")
}
