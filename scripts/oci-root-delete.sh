#!/bin/bash
# oci-root-delete.sh: root's `hutch oci delete` of containers a user made,
# as Slurm runs it, against what the user can plant in the state directory
# (make test-oci-root; root only). The user ($HUTCH_TEST_USER) creates a
# real container and three traps; root deletes all four:
#   - a container whose state directory is a symlink to a root-owned
#     directory: delete fails, the directory keeps its files;
#   - a state file naming a root-owned process, with its real start time:
#     delete removes the record and the process lives;
#   - a state file that is a FIFO: delete does not block;
#   - a state file naming a long-lived process of the user's as the
#     supervisor: delete does not wait for it for ever (it kills it after
#     a grace);
#   - the real container, created and running: delete --force ends it and
#     removes its state, and none of its processes is left.
# Each check prints "blocked: ..." or "ESCAPED: ..."; any ESCAPED fails.
# The user's own commands never see HUTCH_MUTATE (env -i).
set -uo pipefail
user=${HUTCH_TEST_USER:-hutchtest}
if [ "$(id -u)" != 0 ]; then
	echo "oci-root-delete.sh: run as root" >&2
	exit 1
fi
cd "$(dirname "$0")/.."
go=$(readlink -f "$(command -v go || echo /usr/local/go/bin/go)")
uid=$(id -u "$user")
work=$(mktemp -d /tmp/hutch-oci-root.XXXXXX)
victim=$(mktemp -d /var/tmp/hutch-oci-victim.XXXXXX)
root_sleep= user_sleep=
cleanup() {
	[ -n "$root_sleep" ] && kill "$root_sleep" 2>/dev/null
	[ -n "$user_sleep" ] && kill "$user_sleep" 2>/dev/null
	rm -rf "$work" "$victim"
}
trap cleanup EXIT
chmod 0755 "$work"
# HUTCH_MUTATE=NAME (oci-nofollow, oci-pid-owner, oci-delete-wait) switches a defence off
# in root's hutch, to watch this script catch it.
CGO_ENABLED=0 "$go" build ${HUTCH_MUTATE:+-tags hutch_mutate} -o "$work/hutch" ./cmd/hutch || exit 1
install -d -m 0700 -o "$uid" -g "$(id -g "$user")" "/run/user/$uid"
state=/run/user/$uid/hutch/oci-root-test
marker="hutch-oci-root-$$"

# The bundle: busybox, a command that runs until killed.
mkdir -p "$work/b/rootfs/bin"
cp "$(command -v busybox)" "$work/b/rootfs/bin/busybox"
ln -s busybox "$work/b/rootfs/bin/sh"
cat >"$work/b/config.json" <<EOF
{"ociVersion":"1.0.2","process":{"args":["sh","-c","exec busybox sleep 1000 # $marker"],"env":["PATH=/bin"],"cwd":"/","user":{"uid":0,"gid":0}},
 "root":{"path":"rootfs","readonly":true},
 "linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"mount"}]}}
EOF
chown -R "$user:" "$work/b"
echo precious >"$victim/precious"
echo '{"ociVersion":"1.0.2","id":"evil-link","status":"stopped","supervisor":0,"supervisor_start":0,"bundle":"/","created":"2020-01-01T00:00:00Z"}' >"$victim/state.json"
sleep 1000 &
root_sleep=$!
root_start=$(awk '{print $22}' "/proc/$root_sleep/stat")

as_user() {
	runuser -u "$user" -- env -i HOME="$(getent passwd "$user" | cut -d: -f6)" PATH=/usr/bin:/bin \
		XDG_RUNTIME_DIR="/run/user/$uid" "$@"
}
as_user "$work/hutch" oci --root "$state" delete --force real >/dev/null 2>&1
as_user "$work/hutch" oci --root "$state" create --bundle "$work/b" real </dev/null >/dev/null 2>&1 ||
	{ echo "oci-root-delete.sh: the user's create failed" >&2; exit 1; }
as_user "$work/hutch" oci --root "$state" start real || exit 1
as_user sh -c "
	cd $state || exit 1
	rm -rf evil-link evil-pid evil-fifo
	ln -s $victim evil-link
	mkdir -m 0700 evil-pid evil-fifo
	printf '%s' '{\"ociVersion\":\"1.0.2\",\"id\":\"evil-pid\",\"status\":\"running\",\"pid\":$root_sleep,\"pid_start\":$root_start,\"supervisor\":$root_sleep,\"supervisor_start\":$root_start,\"bundle\":\"/\",\"created\":\"2020-01-01T00:00:00Z\"}' >evil-pid/state.json
	mkfifo evil-fifo/state.json
" || exit 1
# A record naming a long-lived process of the user's as the supervisor:
# root's delete must not wait for it for ever.
user_sleep=$(as_user sh -c 'sleep 1000 </dev/null >/dev/null 2>&1 & echo $!')
user_start=$(awk '{print $22}' "/proc/$user_sleep/stat")
as_user sh -c "
	cd $state && rm -rf evil-wait && mkdir -m 0700 evil-wait &&
	printf '%s' '{\"ociVersion\":\"1.0.2\",\"id\":\"evil-wait\",\"status\":\"stopped\",\"supervisor\":$user_sleep,\"supervisor_start\":$user_start,\"bundle\":\"/\",\"created\":\"2020-01-01T00:00:00Z\"}' >evil-wait/state.json
" || exit 1

fail=0
check() { # VERDICT-IF-TRUE DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then echo "blocked: $what"; else echo "ESCAPED: $what"; fail=1; fi
}
h="$work/hutch"
out=$("$h" oci --root "$state" delete --force evil-link 2>&1)
check "delete of a symlinked state directory refused ($out)" test $? -ne 0
check "the symlink's target keeps its files" test -f "$victim/precious" -a -f "$victim/state.json"
"$h" oci --root "$state" delete --force evil-pid >/dev/null 2>&1
check "a root process named in a state file was not signalled" kill -0 "$root_sleep"
timeout 20 "$h" oci --root "$state" delete --force evil-fifo >/dev/null 2>&1
check "delete of a FIFO state file did not block" test $? -ne 124
# Bounded by timeout: without the grace, delete waits for the sleep's 1000 s.
timeout 30 "$h" oci --root "$state" delete --force evil-wait >/dev/null 2>&1
check "delete of a record naming the user's sleep as its supervisor did not wait for it" test $? -ne 124
kill "$user_sleep" 2>/dev/null
real_pid=$("$h" oci --root "$state" state real | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
check "the real container is running before root's delete (pid $real_pid)" test -n "$real_pid"
"$h" oci --root "$state" delete --force real
check "root's delete --force of the user's container succeeded" test $? -eq 0
check "its state is gone" test ! -e "$state/real"
left=$(pgrep -f "$marker" || true)
check "none of its processes is left ($left)" test -z "$left"
rm -rf "$state"
exit $fail
