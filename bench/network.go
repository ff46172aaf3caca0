package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	bulkBytes     = 1 << 30 // one HTTP download through the proxy
	smallRequests = 200
	httpRounds    = 2
	// iperf3 through a user-mode NAT is the noisiest number here: slirp4netns
	// is one thread competing with the client and server for two CPUs.
	iperfRounds = 3
)

// netPath is one way out of a sandbox to the host's loopback.
type netPath struct {
	id, name string
	prefix   []string // the sandbox, up to and including "--"; nil: native
	host     string   // the host's 127.0.0.1 as seen from inside
	proxy    bool     // HTTP goes through $HTTP_PROXY (hutch's proxy mode)
	why      string   // when unavailable
}

// network measures, from inside each sandbox, TCP throughput with iperf3
// and small HTTP requests against servers on the host's 127.0.0.1, which
// each mode reaches its own way (slirp4netns at 10.0.2.2, pasta at the
// gateway, the proxy by name).
func (b *bench) network(ctx context.Context) {
	srv, err := startHTTP()
	if err != nil {
		b.add("network", "HTTP server", "http-server", "", "").fail(err)
		return
	}
	defer srv.Close()
	httpPort := srv.Addr().(*net.TCPAddr).Port

	paths := []netPath{{id: "native", name: "native", host: "127.0.0.1"}}
	if argv, why := b.toolArgv("rootlesskit", "--net=slirp4netns", "--mtu=65520"); why == "" && b.tools["slirp4netns"].OK {
		// rootlesskit 1.x lets the sandbox reach the host's loopback at
		// 10.0.2.2 unless --disable-host-loopback: raw slirp4netns.
		paths = append(paths, netPath{id: "rootlesskit-slirp4netns", name: "rootlesskit --net=slirp4netns (raw slirp4netns)", prefix: argv, host: "10.0.2.2"})
	} else {
		if why == "" {
			why = "slirp4netns: " + b.tools["slirp4netns"].Why
		}
		paths = append(paths, netPath{id: "rootlesskit-slirp4netns", name: "rootlesskit --net=slirp4netns (raw slirp4netns)", why: why})
	}
	hutch := func(id, name, mode, host string, extra ...string) {
		flags := append([]string{"--network", mode, "--host-loopback"}, extra...)
		p := netPath{id: id, name: name, host: host, proxy: mode == "proxy", why: b.hutchWorks(ctx, mode, flags[2:]...)}
		if p.why == "" {
			p.prefix = append(b.hutchRun(flags), b.self, "client", "exec")
		}
		paths = append(paths, p)
	}
	hutch("hutch-slirp4netns", "hutch --network slirp4netns", "slirp4netns", "10.0.2.2")
	hutch("hutch-pasta", "hutch --network pasta", "pasta", "@gateway")
	hutch("hutch-proxy", "hutch --network proxy", "proxy", "127.0.0.1", "--allow", fmt.Sprintf("127.0.0.1:%d", httpPort))
	iperfPort, err := freePort()
	if err != nil {
		b.add("network", "iperf3 port", "iperf3-port", "", "").fail(err)
		return
	}
	paths = append(paths, b.transparentPath(ctx, httpPort, iperfPort))
	for i := range paths {
		if paths[i].prefix != nil && paths[i].prefix[0] != b.hutch {
			paths[i].prefix = append(paths[i].prefix, b.self, "client", "exec")
		}
	}

	b.iperf(ctx, paths, iperfPort)
	b.httpBench(ctx, paths, httpPort)
}

// transparentPath is hutch's proxy mode with a client that knows nothing
// of the proxy (issue 16): it connects by name, hutch's DNS answers, the
// redirect rules hand the connection to the proxy. The name must resolve
// on the host to its 127.0.0.1, where the servers listen: the host's own
// name does on many machines (/etc/hosts); where it does not, the path is
// unavailable.
func (b *bench) transparentPath(ctx context.Context, ports ...int) netPath {
	p := netPath{id: "hutch-transparent", name: "hutch --network proxy, transparent"}
	name, _ := os.Hostname()
	ips, err := net.LookupIP(name)
	loop := err == nil && len(ips) > 0
	for _, ip := range ips {
		loop = loop && ip.Equal(net.IPv4(127, 0, 0, 1))
	}
	if !loop {
		p.why = fmt.Sprintf("the host's name %q does not resolve to 127.0.0.1 only (the transparent path needs a name for the host's loopback)", name)
		return p
	}
	flags := []string{"--network", "proxy", "--host-loopback"}
	for _, port := range ports {
		flags = append(flags, "--allow", fmt.Sprintf("%s:%d", name, port))
	}
	p.host = name
	if p.why = b.hutchWorks(ctx, "proxy", flags[2:]...); p.why == "" {
		p.prefix = append(b.hutchRun(flags), b.self, "client", "exec")
	}
	return p
}

// iperf measures TCP throughput into the host's loopback, one iperf3
// server, iperfRounds client runs per path, interleaved.
func (b *bench) iperf(ctx context.Context, paths []netPath, port int) {
	t := b.tools["iperf3"]
	var rows []*Row
	var live []netPath
	for _, p := range paths {
		if p.proxy {
			continue // a proxy carries HTTP, not iperf3's protocol
		}
		r := b.add("network", "iperf3, "+p.name, "iperf3-"+p.id, "", "Gbit/s")
		r.HigherIsBetter = true
		switch {
		case !t.OK:
			r.unavailable("iperf3: " + t.Why)
		case p.why != "":
			r.unavailable(p.why)
		default:
			rows, live = append(rows, r), append(live, p)
		}
	}
	if len(live) == 0 {
		return
	}
	b.log.printf("network: iperf3, %d runs of %ds per path", b.rounds(iperfRounds), b.o.netSecs)
	srv := exec.CommandContext(ctx, t.Path, "-s", "-B", "127.0.0.1", "-p", strconv.Itoa(port))
	srv.Stdout, srv.Stderr = b.run.devnull, b.run.devnull
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := srv.Start(); err != nil {
		for _, r := range rows {
			r.fail(err)
		}
		return
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if err := waitListen(port, 5*time.Second); err != nil {
		for _, r := range rows {
			r.fail(fmt.Errorf("iperf3 -s: %w", err))
		}
		return
	}
	samples := make([][]float64, len(live))
	errs := make([]error, len(live))
	for round := 0; round < b.rounds(iperfRounds) && ctx.Err() == nil; round++ {
		for i, p := range live {
			if errs[i] != nil {
				continue
			}
			argv := append(append([]string(nil), p.prefix...), t.Path, "-c", p.host, "-p", strconv.Itoa(port), "-t", strconv.Itoa(b.o.netSecs), "-J")
			if round == 0 {
				rows[i].How = shellQuote(argv)
			}
			res, err := b.run.run(ctx, b.cmd(argv...), time.Duration(b.o.netSecs)*time.Second+30*time.Second)
			if err != nil {
				errs[i] = err
				continue
			}
			var out struct {
				End struct {
					SumReceived struct {
						BitsPerSecond float64 `json:"bits_per_second"`
					} `json:"sum_received"`
				} `json:"end"`
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || out.Error != "" {
				errs[i] = fmt.Errorf("iperf3: %v%s", err, out.Error)
				continue
			}
			samples[i] = append(samples[i], out.End.SumReceived.BitsPerSecond/1e9)
		}
	}
	for i, r := range rows {
		if errs[i] != nil {
			r.fail(errs[i])
		} else {
			r.setSamples(samples[i])
		}
	}
	b.netRatios("iperf3-")
}

// httpBench: smallRequests sequential GETs (a new connection each) per
// path, and bulk download throughput through the proxy against native.
func (b *bench) httpBench(ctx context.Context, paths []netPath, port int) {
	b.log.printf("network: %d sequential HTTP requests per path, %d rounds", smallRequests, b.rounds(httpRounds))
	type item struct {
		row  *Row
		argv []string
		ms   []float64
		tot  []float64
		err  error
	}
	var items []*item
	for _, p := range paths {
		r := b.add("network", fmt.Sprintf("%d HTTP requests, %s", smallRequests, p.name), "http-small-"+p.id, "", "ms/request")
		if p.why != "" {
			r.unavailable(p.why)
			continue
		}
		argv := append(append([]string(nil), p.prefix...), b.self, "client", "http", "-n", strconv.Itoa(smallRequests))
		if p.proxy {
			argv = append(argv, "-proxy-env")
		}
		argv = append(argv, fmt.Sprintf("http://%s:%d/small", p.host, port))
		r.How = shellQuote(argv)
		items = append(items, &item{row: r, argv: argv})
	}
	// Bulk: the proxy's throughput, against a native download.
	for _, p := range paths {
		if p.id != "native" && !p.proxy && p.id != "hutch-transparent" {
			continue
		}
		r := b.add("network", "HTTP download of 1 GiB, "+p.name, "http-bulk-"+p.id, "", "Gbit/s")
		r.HigherIsBetter = true
		if p.why != "" {
			r.unavailable(p.why)
			continue
		}
		argv := append(append([]string(nil), p.prefix...), b.self, "client", "http", "-n", "1")
		if p.proxy {
			argv = append(argv, "-proxy-env")
		}
		argv = append(argv, fmt.Sprintf("http://%s:%d/bulk?bytes=%d", p.host, port, bulkBytes))
		r.How = shellQuote(argv)
		items = append(items, &item{row: r, argv: argv})
	}
	for round := 0; round < b.rounds(httpRounds) && ctx.Err() == nil; round++ {
		for _, it := range items {
			if it.err != nil {
				continue
			}
			res, err := b.run.run(ctx, b.cmd(it.argv...), 2*time.Minute)
			if err != nil {
				it.err = err
				continue
			}
			var hr httpResult
			if err := json.Unmarshal([]byte(res.stdout), &hr); err != nil {
				it.err = fmt.Errorf("client output %q: %v", firstLine(res.stdout), err)
				continue
			}
			if it.row.Unit == "Gbit/s" {
				it.ms = append(it.ms, float64(hr.Bytes)*8/hr.Seconds/1e9)
			} else {
				it.ms = append(it.ms, hr.MS...)
				it.tot = append(it.tot, hr.Seconds*1000)
			}
		}
	}
	for _, it := range items {
		if it.err != nil {
			it.row.fail(it.err)
			continue
		}
		it.row.setSamples(it.ms)
		if len(it.tot) > 0 {
			it.row.Note = fmt.Sprintf("%d in %.0f ms (median of %d rounds)", smallRequests, summarize(it.tot).Median, len(it.tot))
		}
	}
	b.netRatios("http-small-")
	b.netRatios("http-bulk-")
}

// netRatios sets each hutch path's ratio against raw slirp4netns (iperf3)
// or native.
func (b *bench) netRatios(prefix string) {
	base := "network/" + prefix + "native"
	if prefix == "iperf3-" {
		base = "network/iperf3-rootlesskit-slirp4netns"
	}
	for _, r := range b.rep.Rows {
		if r.Group != "network" || !strings.HasPrefix(r.ID, "network/"+prefix+"hutch") || !r.ok() {
			continue
		}
		if x := b.rep.ratio(r.ID, base); x > 0 {
			r.Ratios = map[string]float64{base: x}
		}
	}
}

// startHTTP serves /small (a few bytes) and /bulk?bytes=N (zeros) on the
// host's 127.0.0.1.
func startHTTP() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	zeros := make([]byte, 1<<20)
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/bulk", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			k := int64(len(zeros))
			if n < k {
				k = n
			}
			if _, err := w.Write(zeros[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	go (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(l)
	return l, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListen polls /proc/net/tcp for a listener on 127.0.0.1:port,
// without connecting to it (iperf3 would take a probe for a client).
func waitListen(port int, timeout time.Duration) error {
	want := fmt.Sprintf("0100007F:%04X", port)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile("/proc/net/tcp")
		for _, l := range strings.Split(string(data), "\n") {
			f := strings.Fields(l)
			if len(f) > 3 && f[1] == want && f[3] == "0A" {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on 127.0.0.1:%d after %v", port, timeout)
}
