package userns

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Range is a run of subordinate ids granted to a user in /etc/subuid or
// /etc/subgid.
type Range struct {
	Start uint32 `json:"start"`
	Count uint32 `json:"count"`
}

// Default locations of the subordinate-id files (shadow-utils).
const (
	SubUIDFile = "/etc/subuid"
	SubGIDFile = "/etc/subgid"
)

// ParseSubIDs returns the ranges that r grants to the user called name or
// with numeric id, in file order. Malformed lines are skipped, as
// shadow-utils does.
func ParseSubIDs(r io.Reader, name string, id int) ([]Range, error) {
	var out []Range
	idStr := strconv.Itoa(id)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 {
			continue
		}
		if f[0] != name && f[0] != idStr {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 || start+count > 1<<32-1 {
			continue
		}
		out = append(out, Range{Start: uint32(start), Count: uint32(count)})
	}
	return out, sc.Err()
}

// ReadSubIDs reads path and returns the ranges for the user. A missing file
// is no ranges, not an error: most machines without newuidmap have none.
func ReadSubIDs(path, name string, id int) ([]Range, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rs, err := ParseSubIDs(f, name, id)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return rs, nil
}

// Total is the number of ids in rs.
func Total(rs []Range) uint64 {
	var n uint64
	for _, r := range rs {
		n += uint64(r.Count)
	}
	return n
}
