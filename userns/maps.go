package userns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Mapping is one line of a uid_map or gid_map: Size ids starting at Inside
// in the namespace are Outside.. in the parent namespace.
type Mapping struct {
	Inside  uint32 `json:"inside"`
	Outside uint32 `json:"outside"`
	Size    uint32 `json:"size"`
}

// MaxLines is the kernel's limit on lines in a uid_map or gid_map (since
// Linux 4.15).
const MaxLines = 340

// Single maps one id: inside is outside.
func Single(inside, outside uint32) []Mapping {
	return []Mapping{{Inside: inside, Outside: outside, Size: 1}}
}

// Full maps inside to outside (the caller's own id) and fills every other
// id from 0 upward with the subordinate ranges, in order, skipping inside.
// With inside = 0 this is podman's default layout; with inside = outside it
// is podman's keep-id.
func Full(inside, outside uint32, subs []Range) ([]Mapping, error) {
	if Total(subs) == 0 {
		return nil, errors.New("no subordinate ids to map")
	}
	var out []Mapping
	next := uint32(0) // next inside id to assign from the subordinate ranges
	add := func(in, o, n uint32) {
		if l := len(out); l > 0 {
			p := &out[l-1]
			if p.Inside+p.Size == in && p.Outside+p.Size == o {
				p.Size += n
				return
			}
		}
		out = append(out, Mapping{Inside: in, Outside: o, Size: n})
	}
	placedOwn := false
	for _, r := range subs {
		start, count := r.Start, r.Count
		for count > 0 {
			if !placedOwn && next == inside {
				add(inside, outside, 1)
				placedOwn = true
				next++
				continue
			}
			n := count
			if !placedOwn && next < inside && inside-next < n {
				n = inside - next
			}
			if uint64(next)+uint64(n) > 1<<32-1 {
				n = uint32(1<<32 - 1 - uint64(next))
				if n == 0 {
					return out, nil
				}
			}
			add(next, start, n)
			next += n
			start += n
			count -= n
		}
	}
	if !placedOwn {
		// The ranges ran out below inside: map it on its own anyway.
		add(inside, outside, 1)
	}
	if len(out) > MaxLines {
		return nil, fmt.Errorf("subordinate ids give %d map lines, the kernel takes at most %d", len(out), MaxLines)
	}
	return out, nil
}

// Contains reports whether id is mapped by ms (as an inside id).
func Contains(ms []Mapping, id uint32) bool {
	for _, m := range ms {
		if id >= m.Inside && uint64(id) < uint64(m.Inside)+uint64(m.Size) {
			return true
		}
	}
	return false
}

// Format renders ms as the kernel's uid_map text.
func Format(ms []Mapping) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%d %d %d\n", m.Inside, m.Outside, m.Size)
	}
	return b.String()
}

// WriteWithHelper writes ms into pid's uid_map or gid_map with a
// newuidmap/newgidmap binary at helper.
func WriteWithHelper(ctx context.Context, helper string, pid int, ms []Mapping) error {
	args := []string{strconv.Itoa(pid)}
	for _, m := range ms {
		args = append(args, strconv.FormatUint(uint64(m.Inside), 10),
			strconv.FormatUint(uint64(m.Outside), 10), strconv.FormatUint(uint64(m.Size), 10))
	}
	cmd := exec.CommandContext(ctx, helper, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s %s: %s", helper, strings.Join(args, " "), msg)
	}
	return nil
}
