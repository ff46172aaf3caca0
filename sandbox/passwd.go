package sandbox

import (
	"strconv"
	"strings"
)

// passwdShell returns the shell field of uid's line in passwd text.
func passwdShell(passwd string, uid int) string {
	id := strconv.Itoa(uid)
	for _, line := range strings.Split(passwd, "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[2] == id {
			return f[6]
		}
	}
	return ""
}
