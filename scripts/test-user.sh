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
# A deny-by-group file: the user is in hutchdeny, and a file of that
# group with mode 0604 is unreadable to it on the host (the group's bits
# apply, not the others'). escape_privileges.txtar checks that it stays
# unreadable in every sandbox; readable is its positive control.
getent group hutchdeny >/dev/null || groupadd hutchdeny
id -nG "$user" | tr ' ' '\n' | grep -qx hutchdeny || usermod -aG hutchdeny "$user"
install -d -m 0755 -o root -g root /opt/hutch-test
printf 'denied by group\n' > /opt/hutch-test/deny-by-group
chown root:hutchdeny /opt/hutch-test/deny-by-group
chmod 0604 /opt/hutch-test/deny-by-group
printf 'readable\n' > /opt/hutch-test/readable
chmod 0644 /opt/hutch-test/readable
# What a systemd login would give: a private XDG_RUNTIME_DIR.
install -d -m 0700 -o "$user" -g "$(id -g "$user")" "/run/user/$uid"
