package oci

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/supervise"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
)

// ShimName is the fixed argv[0] of a created container's supervisor.
const ShimName = "hutch-oci-shim"

// IsShim reports whether argv0 names it.
func IsShim(argv0 string) bool { return filepath.Base(argv0) == ShimName }

// shimRequest is what create hands its supervisor on fd 3: the plan,
// made and checked by create (so that its errors are create's), and
// where to record the container.
type shimRequest struct {
	Root        string            `json:"root"`
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Plan        *sandbox.Plan     `json:"plan"`
	Log         string            `json:"log,omitempty"`
	LogFormat   string            `json:"log_format,omitempty"`
	Debug       bool              `json:"debug,omitempty"`
}

// shimReply is the supervisor's one answer to create on fd 4.
type shimReply struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
	Hint  string `json:"hint,omitempty"`
}

// Create is hutch oci create: the sandbox is built and its command
// waits (state "created") when it returns.
func (r *Runtime) Create(id, bundle, pidFile, logFile, logFormat string, debug bool) error {
	root, err := r.root()
	if err != nil {
		return err
	}
	s, err := openStore(root, true)
	if err != nil {
		return err
	}
	defer s.close()
	c, err := s.create(id)
	if err != nil {
		return err
	}
	defer c.close()
	prep, b, dir, err := r.prepare(bundle, false)
	if err != nil {
		c.remove()
		return err
	}
	defer prep.Close()
	// Until the supervisor records itself, the record names create: a
	// create that dies here leaves a container that reads as stopped.
	if err := c.write(newRecord(id, dir, b.Annotations)); err != nil {
		c.remove()
		return err
	}
	req := shimRequest{Root: s.path, ID: id, Bundle: dir, Annotations: b.Annotations, Plan: prep.Plan, Log: logFile, LogFormat: logFormat, Debug: debug}
	pid, err := startShim(req, r.Stdio)
	if err != nil {
		c.remove()
		return err
	}
	return writePidFile(pidFile, pid, nil)
}

// startShim starts the supervisor, detached in a session of its own, and
// waits for its answer.
func startShim(req shimRequest, stdio supervise.Stdio) (int, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return 0, err
	}
	defer repR.Close()
	cmd := &exec.Cmd{
		Path: "/proc/self/exe", Args: []string{ShimName},
		Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr,
		ExtraFiles:  []*os.File{reqR, repW},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	reqR.Close()
	repW.Close()
	if err != nil {
		reqW.Close()
		return 0, fmt.Errorf("starting the container's supervisor: %w", err)
	}
	go cmd.Wait() // reaped if it ends while we wait for its answer
	err = wire.WriteFrame(reqW, req)
	reqW.Close()
	if err != nil {
		return 0, fmt.Errorf("sending the plan to the container's supervisor: %w", err)
	}
	var rep shimReply
	if err := json.NewDecoder(io.LimitReader(repR, 1<<20)).Decode(&rep); err != nil {
		return 0, fmt.Errorf("the container's supervisor ended without an answer")
	}
	if rep.Error != "" {
		e := errors.New(rep.Error)
		if rep.Hint != "" {
			return 0, hint.With(e, "%s", rep.Hint)
		}
		return 0, e
	}
	return rep.Pid, nil
}

// ShimMain is a created container's supervisor: it launches the plan
// held, answers create once the command waits, releases it on start,
// records each state, and ends when the sandbox does.
func ShimMain() int {
	reqF, repF := os.NewFile(3, "request"), os.NewFile(4, "reply")
	if reqF == nil || repF == nil {
		fmt.Fprintf(os.Stderr, "%s: this is hutch oci's supervisor; run hutch oci create instead\n", ShimName)
		return 125
	}
	var req shimRequest
	if err := wire.ReadFrame(reqF, &req); err != nil {
		return 125
	}
	reqF.Close()
	log, closeLog := OpenLog(req.Log, req.LogFormat, req.Debug, os.Stderr)
	defer closeLog()
	sh := &shim{req: req, reply: repF, log: log}
	if err := sh.run(); err != nil {
		sh.answer(shimReply{Error: err.Error(), Hint: hintOf(err)})
		log("error", err.Error())
		return 1
	}
	return 0
}

type shim struct {
	req     shimRequest
	reply   *os.File
	replied sync.Once
	log     func(level, msg string)
	c       *container
	rec     *record
	mu      sync.Mutex
	// started is closed once the command runs or the sandbox ended.
	started chan struct{}
	startOK bool
}

func (sh *shim) answer(rep shimReply) {
	sh.replied.Do(func() {
		json.NewEncoder(sh.reply).Encode(rep)
		sh.reply.Close()
	})
}

func (sh *shim) record(f func(*record)) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	f(sh.rec)
	if err := sh.c.write(sh.rec); err != nil {
		sh.log("warning", err.Error())
	}
}

func (sh *shim) run() error {
	s, err := openStore(sh.req.Root, false)
	if err != nil {
		return err
	}
	defer s.close()
	if sh.c, err = s.open(sh.req.ID); err != nil {
		return err
	}
	defer sh.c.close()
	sh.rec = newRecord(sh.req.ID, sh.req.Bundle, sh.req.Annotations)
	sh.record(func(*record) {})
	if err := sandbox.Resolve(sh.req.Plan); err != nil {
		sh.c.remove()
		return err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(sh.c.dir(), ctlSocket), Net: "unix"})
	if err != nil {
		sh.c.remove()
		return fmt.Errorf("container %s: its control socket: %w", sh.req.ID, err)
	}
	ln.SetUnlinkOnClose(false)
	hold := make(chan struct{})
	sh.started = make(chan struct{})
	var startOnce sync.Once
	go sh.serve(ln, func() { startOnce.Do(func() { close(hold) }) })
	created := false
	opts := supervise.LaunchOptions{
		Warn: func(m string) { sh.log("warning", m) },
		Hold: hold,
		Created: func(pid int) {
			created = true
			sh.record(func(r *record) { r.Status, r.Pid, r.PidStart = Created, pid, mustStart(pid) })
			sh.answer(shimReply{Pid: pid})
		},
		Started: func(int) {
			sh.record(func(r *record) { r.Status = Running })
			sh.mu.Lock()
			sh.startOK = true
			sh.mu.Unlock()
			close(sh.started)
		},
	}
	stdio := supervise.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	res, err := supervise.Launch(context.Background(), sh.req.Plan, stdio, opts)
	ln.Close()
	if !created {
		sh.c.remove()
		if err == nil {
			err = fmt.Errorf("container %s ended before it was created", sh.req.ID)
		}
		return err
	}
	code := 125
	if err != nil {
		sh.log("error", err.Error())
	} else {
		code = res.ExitCode
	}
	sh.record(func(r *record) { r.Status, r.ExitCode = Stopped, &code })
	sh.mu.Lock()
	if !sh.startOK {
		close(sh.started)
	}
	sh.mu.Unlock()
	unlinkCtl(sh.c)
	return nil
}

func unlinkCtl(c *container) { os.Remove(filepath.Join(c.dir(), ctlSocket)) }

// serve answers start requests on the control socket: "start\n" releases
// the command, and the answer comes once it runs, or the sandbox ended.
func (sh *shim) serve(ln *net.UnixListener, release func()) {
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			line, err := bufio.NewReader(io.LimitReader(conn, 64)).ReadString('\n')
			if err != nil || strings.TrimSpace(line) != "start" {
				fmt.Fprintf(conn, "error: unknown request\n")
				return
			}
			release()
			<-sh.started
			sh.mu.Lock()
			ok := sh.startOK
			sh.mu.Unlock()
			if ok {
				fmt.Fprintf(conn, "ok\n")
			} else {
				fmt.Fprintf(conn, "error: container %s ended before its command started\n", sh.req.ID)
			}
		}()
	}
}

// Start is hutch oci start: release a created container's command.
func (r *Runtime) Start(id string) error {
	s, c, rec, err := r.look(id)
	if err != nil {
		return err
	}
	defer s.close()
	defer c.close()
	if rec.Status != Created {
		return fmt.Errorf("container %s is %s, not created", id, rec.Status)
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: filepath.Join(c.dir(), ctlSocket), Net: "unix"})
	if err != nil {
		return fmt.Errorf("container %s: reaching its supervisor: %w", id, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("start\n")); err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	line, err := bufio.NewReader(io.LimitReader(conn, 4096)).ReadString('\n')
	if err != nil {
		return fmt.Errorf("container %s: its supervisor ended without an answer", id)
	}
	if msg, bad := strings.CutPrefix(strings.TrimSpace(line), "error: "); bad {
		return errors.New(msg)
	}
	return nil
}

func hintOf(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}
