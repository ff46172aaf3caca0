#!/bin/bash
# test-user.sh NAME: create the unprivileged user the sandbox tests run as,
# with a subordinate id range and a runtime directory. Idempotent; root only.
set -euo pipefail
user=${1:-hutchtest}
if [ "$(id -u)" != 0 ]; then
	echo "test-user.sh: run as root (it creates a user)" >&2
	exit 1
fi
if ! id "$user" >/dev/null 2>&1; then
	useradd --create-home --shell /bin/bash "$user"
fi
uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)
# The tests build in a copy of the tree under the home directory.
[ -d "$home" ] || install -d -m 0755 -o "$uid" -g "$(id -g "$user")" "$home"
# A subordinate range that overlaps no one else's.
for f in /etc/subuid /etc/subgid; do
	touch "$f"
	if ! grep -q "^$user:" "$f"; then
		start=$(awk -F: 'BEGIN{m=100000} {e=$2+$3; if (e>m) m=e} END{print m}' "$f")
		echo "$user:$start:65536" >> "$f"
	fi
done
# What a systemd login would give: a private XDG_RUNTIME_DIR.
install -d -m 0700 -o "$user" -g "$(id -g "$user")" "/run/user/$uid"
