package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hutch-sandbox/hutch/internal/bytesjson"
	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/sysctl"
	"github.com/hutch-sandbox/hutch/sandbox/layers"
	"github.com/hutch-sandbox/hutch/userns"
)

// LayersHelperName is the fixed argv[0] of the hidden entry that works on
// a session's upper layers inside a user namespace with the session's id
// maps. With a subordinate-id map, the sandbox may leave files owned by
// ids that are yours only through /etc/subuid: outside a namespace you can
// neither read every one nor remove them. Inside one with the same maps,
// holding capabilities over exactly those ids, hutch can; files it creates
// there (apply's) are still owned by your own uid on the host.
const LayersHelperName = "hutch-layers"

// IsLayersHelper reports whether argv0 names the helper.
func IsLayersHelper(argv0 string) bool { return filepath.Base(argv0) == LayersHelperName }

// helperMsg is one line the helper writes on fd 3.
type helperMsg struct {
	Progress *layers.Result `json:"progress,omitempty"`
	Reply    *opReply       `json:"reply,omitempty"`
}

// viaHelper runs req in the helper: a new user namespace whose maps,
// written by newuidmap and newgidmap, are the session's.
func (s *Session) viaHelper(req opRequest, w io.Writer, progress func(layers.Result)) (*opReply, error) {
	req.Dir = s.dir
	uidHelper, gidHelper := userns.FindHelper("newuidmap"), userns.FindHelper("newgidmap")
	if !uidHelper.Usable() || !gidHelper.Usable() {
		return nil, hint.With(errors.New("the session holds files owned by your subordinate ids, and newuidmap/newgidmap are not usable to reach them"),
			"install the uidmap package, or remove the session's files as root")
	}
	msgR, msgW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer msgR.Close()
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{LayersHelperName},
		Env:         []string{"GOMAXPROCS=2"},
		Stdout:      w,
		Stderr:      os.Stderr,
		ExtraFiles:  []*os.File{msgW},
		SysProcAttr: &syscall.SysProcAttr{},
	}
	for c := uintptr(0); c <= uintptr(sysctl.LastCap()); c++ {
		cmd.SysProcAttr.AmbientCaps = append(cmd.SysProcAttr.AmbientCaps, c)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		msgW.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	exited, err := userns.Start(ctx, cmd, userns.Helpers{NewUIDMap: uidHelper.Path, NewGIDMap: gidHelper.Path}, s.meta.UIDMap, s.meta.GIDMap)
	cancel()
	msgW.Close()
	if err != nil {
		return nil, hint.With(fmt.Errorf("starting %s: %w", LayersHelperName, err),
			"check your /etc/subuid and /etc/subgid entries (hutch doctor)")
	}
	// The request goes once the maps are in place: the helper waits for it.
	if data, err := bytesjson.Marshal(req); err == nil {
		stdin.Write(append(data, '\n'))
	}
	stdin.Close()
	var reply *opReply
	sc := bufio.NewScanner(msgR)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		var m helperMsg
		if err := bytesjson.Unmarshal(sc.Bytes(), &m); err != nil {
			continue
		}
		if m.Progress != nil && progress != nil {
			progress(*m.Progress)
		}
		if m.Reply != nil {
			reply = m.Reply
		}
	}
	waitErr := <-exited
	if reply == nil {
		return nil, fmt.Errorf("%s ended without a reply (%v)", LayersHelperName, waitErr)
	}
	if reply.Err != "" {
		err := errors.New(reply.Err)
		if reply.Hint != "" {
			err = &hint.Error{Err: err, Tip: reply.Hint}
		}
		return reply, err
	}
	return reply, nil
}

// LayersHelperMain is hutch-layers: it reads one opRequest on stdin (sent
// once its id maps are written), runs it, and writes helperMsg lines on
// fd 3.
func LayersHelperMain() int {
	out := os.NewFile(3, "reply")
	if out == nil {
		fmt.Fprintln(os.Stderr, "hutch-layers: this is hutch's helper; run hutch instead")
		return 125
	}
	send := func(m helperMsg) {
		if data, err := bytesjson.Marshal(m); err == nil {
			out.Write(append(data, '\n'))
		}
	}
	var req opRequest
	line, err := bufio.NewReader(os.Stdin).ReadBytes('\n')
	if err != nil && len(line) == 0 || bytesjson.Unmarshal(line, &req) != nil {
		return 125
	}
	progress := func(r layers.Result) { send(helperMsg{Progress: &r}) }
	reply, err := doOp(req, os.Stdout, progress)
	if reply == nil {
		reply = &opReply{}
	}
	if err != nil {
		reply.Err = err.Error()
		var he *hint.Error
		if errors.As(err, &he) {
			reply.Hint = he.Tip
		}
	}
	// Progress already went out one by one.
	if reply.Report != nil {
		r := *reply.Report
		reply.Report = &r
	}
	send(helperMsg{Reply: reply})
	return 0
}
