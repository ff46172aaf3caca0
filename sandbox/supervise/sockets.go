package supervise

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
)

// hostListeners returns the paths of the pathname unix sockets bound in
// the caller's network namespace, as /proc/net/unix gives them.
func hostListeners() []string {
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Scan() // the header
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path: the path is the
		// 8th field, absent for unbound sockets and '@' for abstract ones.
		f := strings.Fields(sc.Text())
		if len(f) < 8 || !strings.HasPrefix(f[7], "/") {
			continue
		}
		// A path with spaces spreads over several fields.
		p := filepath.Clean(strings.Join(f[7:], " "))
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
