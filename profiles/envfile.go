package profiles

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

// maxEnvFile bounds what --env-file reads: an environment, not a data set.
const maxEnvFile = 1 << 20

// ReadEnvFile reads a file in docker's --env-file format: one KEY=VALUE a
// line, the value taken as written (no quotes removed, nothing expanded);
// KEY alone passes the caller's value, and is left out when the caller has
// none; blank lines and lines starting with # are skipped. It returns
// KEY=VALUE entries for env.set, in file order. lookup reads the caller's
// environment. Errors carry FILE:LINE:COL.
func ReadEnvFile(path string, lookup func(string) (string, bool)) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &Error{File: path, Msg: unwrapPathErr(err)}
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{File: path, Msg: "is not a regular file"}
	}
	if fi.Size() > maxEnvFile {
		return nil, &Error{File: path, Msg: fmt.Sprintf("is %d bytes; an env file may hold at most %d", fi.Size(), maxEnvFile)}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: unwrapPathErr(err)}
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), maxEnvFile+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		col := len(sc.Text()) - len(line) + 1
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		at := func(msg, tip string) error {
			return &Error{File: path, Line: n, Col: col, Msg: msg, Tip: tip}
		}
		name, value, hasValue := strings.Cut(line, "=")
		if !hasValue {
			name = strings.TrimRight(name, " \t")
		}
		switch {
		case name == "":
			return nil, at("a line with no variable name", "write KEY=VALUE, or KEY alone to pass your own value")
		case !validVarName(name):
			return nil, at(fmt.Sprintf("%s is not a variable name", quoteBytes(name)), "a name is letters, digits and _, not starting with a digit")
		case !utf8.ValidString(value) || strings.ContainsAny(value, "\x00\r"):
			return nil, at(fmt.Sprintf("the value of %s holds a NUL, a carriage return or bytes that are not UTF-8", name), "")
		}
		if !hasValue {
			v, ok := lookup(name)
			if !ok {
				continue // as docker does: a name you have not set passes nothing
			}
			value = v
		}
		out = append(out, name+"="+value)
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	return out, nil
}

// quoteBytes quotes s for an error message, with every control character
// and invalid byte escaped: a name from a file is shown, never replayed.
func quoteBytes(s string) string {
	return fmt.Sprintf("%+q", s)
}
