package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// services times start-up to "job started" beside one service
// (PostgreSQL: initdb into an empty directory, then postgres until it
// accepts queries) and two (Redis, then PostgreSQL), in hutch and
// natively, the same steps in the same order. hutch's row is from its
// start to the first line the job prints; the native one from the first
// service's start to the moment the job could start. The teardown is not
// counted. The difference is hutch's own: its sandboxes and a sandboxed
// ready check, against the services' own start, which dominates.
func (b *bench) services(ctx context.Context) {
	pgBin, err := postgresBin()
	if err != nil {
		for _, id := range []string{"native-1", "hutch-1", "native-2", "hutch-2"} {
			b.add("services", id, id, "", "ms").unavailable(err.Error())
		}
		return
	}
	runs := max(b.o.runs/5, 5)
	b.log.printf("services: %d runs of each, postgres from %s", runs, pgBin)
	for _, two := range []bool{false, true} {
		n := map[bool]string{false: "1", true: "2"}[two]
		what := map[bool]string{false: "PostgreSQL", true: "Redis, then PostgreSQL"}[two]
		native := b.add("services", "native: "+what+" until ready", "native-"+n, "initdb, postgres, pg_isready polled (redis-server, a TCP connect)", "ms")
		hutch := b.add("services", "**hutch run**: "+what+", to the job's first line", "hutch-"+n, "", "ms")
		dir, err := b.servicesProject(two)
		if err != nil {
			hutch.fail(err)
			continue
		}
		hutch.How = "hutch run -- echo started, in " + dir
		var nat, hut []float64
		for i := 0; i < runs && ctx.Err() == nil; i++ {
			ms, err := nativeServices(ctx, pgBin, two)
			if err != nil {
				native.fail(err)
				break
			}
			nat = append(nat, ms)
			if ms, err = b.hutchServices(ctx, dir); err != nil {
				hutch.fail(err)
				break
			}
			hut = append(hut, ms)
		}
		if native.Status != statusError || native.Note == "" {
			native.setSamples(nat)
		}
		if hutch.Status != statusError || hutch.Note == "" {
			hutch.setSamples(hut)
		}
		if native.ok() && hutch.ok() {
			hutch.Note = fmt.Sprintf("hutch's own: %+.0f ms over native (median)", hutch.Stats.Median-native.Stats.Median)
		}
	}
}

// postgresBin is the newest /usr/lib/postgresql/*/bin.
func postgresBin() (string, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if len(bins) == 0 {
		return "", fmt.Errorf("no PostgreSQL in /usr/lib/postgresql (apt-get install postgresql)")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return "", fmt.Errorf("redis-server: %v (apt-get install redis-server)", err)
	}
	return bins[len(bins)-1], nil
}

const pgService = `[services.db]
command = ["sh", "-c", "PG=$(ls -d /usr/lib/postgresql/*/bin | tail -1); $PG/initdb -A trust -U postgres -D /data/pg >/dev/null && exec $PG/postgres -D /data/pg -k /tmp -h 127.0.0.1 -p 5432"]
ready = ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]
`

const redisService = `[services.cache]
command = ["redis-server", "--port", "6379", "--save", ""]
ready = "tcp:6379"
`

// servicesProject writes the project whose hutch.toml has the services.
func (b *bench) servicesProject(two bool) (string, error) {
	dir := filepath.Join(b.o.work, "services-1")
	toml := pgService
	if two {
		dir = filepath.Join(b.o.work, "services-2")
		toml = pgService + "after = [\"cache\"]\n\n" + redisService
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "hutch.toml"), []byte(toml), 0o644)
}

// hutchServices is one hutch run: the time to the job's first line.
func (b *bench) hutchServices(ctx context.Context, dir string) (float64, error) {
	cmd := exec.CommandContext(ctx, b.hutch, "run", "--", "echo", "started")
	cmd.Dir, cmd.Env = dir, b.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	ms := float64(time.Since(start).Microseconds()) / 1000
	if err := cmd.Wait(); err != nil || line != "started\n" {
		return 0, fmt.Errorf("hutch run in %s: %v (first line %q): %s", dir, err, line, strings.TrimSpace(stderr.String()))
	}
	return ms, nil
}

// nativeServices starts the services on the host's loopback, as hutch
// does (in order, each polled until ready with the same pauses), returns
// the time until the last was ready, and stops them.
func nativeServices(ctx context.Context, pgBin string, two bool) (float64, error) {
	// On a tmpfs, as the service's /data is in hutch: initdb and postgres
	// fsync, which costs a disk far more than the sandbox does.
	dir, err := os.MkdirTemp("/dev/shm", "hutch-bench-pg-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
	}()
	start := time.Now()
	if two {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		r := exec.CommandContext(ctx, "redis-server", "--port", strconv.Itoa(port), "--save", "", "--bind", "127.0.0.1")
		if err := r.Start(); err != nil {
			return 0, err
		}
		procs = append(procs, r)
		if err := pollReady(ctx, func() bool {
			c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err == nil {
				c.Close()
			}
			return err == nil
		}); err != nil {
			return 0, err
		}
	}
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	if out, err := exec.CommandContext(ctx, pgBin+"/initdb", "-A", "trust", "-U", "postgres", "-D", dir+"/pg").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	pg := exec.CommandContext(ctx, pgBin+"/postgres", "-D", dir+"/pg", "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := pg.Start(); err != nil {
		return 0, err
	}
	procs = append(procs, pg)
	err = pollReady(ctx, func() bool {
		return exec.CommandContext(ctx, "pg_isready", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(port)).Run() == nil
	})
	return float64(time.Since(start).Microseconds()) / 1000, err
}

// pollReady polls as hutch-service does: 5 ms, doubling to 100 ms.
func pollReady(ctx context.Context, ready func() bool) error {
	deadline := time.Now().Add(60 * time.Second)
	for pause := 5 * time.Millisecond; !ready(); pause = min(2*pause, 100*time.Millisecond) {
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("not ready within 60s")
		}
		time.Sleep(pause)
	}
	return nil
}
