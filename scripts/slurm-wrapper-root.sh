#!/bin/bash
# slurm-wrapper-root.sh: the Slurm test cluster's runtime wrapper
# (scripts/slurm-up.sh wrapper_text), called as root as slurmstepd calls
# RunTimeQuery, RunTimeKill and RunTimeDelete, must read and run nothing
# the job's user can plant as root (make test-oci-root; root only).
#
# The user ($HUTCH_TEST_USER) installs a hutch of their own where the
# wrapper runs it from (a script that logs its uid and HUTCH_MUTATE) and,
# beside it, hutch.mutate as a symlink to a root-only secret. Root calls
# the wrapper: the user's hutch must run as the user, and the secret must
# not reach it ("ESCAPED: ..." otherwise). Control: a plain hutch.mutate
# of the user's still arrives (make mutate's switch works).
set -uo pipefail
user=${HUTCH_TEST_USER:-hutchtest}
if [ "$(id -u)" != 0 ]; then
	echo "slurm-wrapper-root.sh: run as root" >&2
	exit 1
fi
cd "$(dirname "$0")/.."
uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)
rel=.local/libexec/hutch-wrapper-test-$$/hutch
dir=$home/${rel%/*}
work=$(mktemp -d /tmp/hutch-wrapper-root.XXXXXX)
cleanup() { rm -rf "$dir" "$work"; }
trap cleanup EXIT
# The wrapper runs itself again as the user: its directory is open to all,
# the secret's is root's alone.
chmod 0755 "$work"
install -d -m 0700 "$work/private"
echo "root-secret-$$" >"$work/private/secret"
chmod 0600 "$work/private/secret"
scripts/slurm-up.sh wrapper-text "$rel" "$work/hutch-oci" >"$work/hutch-oci" || exit 1
chmod 0755 "$work/hutch-oci"

as_user() { runuser -u "$user" -- env -i PATH=/usr/bin:/bin "$@"; }
as_user mkdir -p "$dir" || exit 1
as_user sh -c 'printf "%s\n" "#!/bin/sh" "printf \"%s %s\\n\" \"\$(id -u)\" \"\${HUTCH_MUTATE-}\" >>\"\${0%/*}/log\"" >"$1" && chmod 0755 "$1"' \
	- "$dir/hutch" || exit 1
fail=0

# The control: a plain file of the user's passes, and the hutch ran as the user.
as_user sh -c 'echo "ctl-$1" >"$2"' - "$$" "$dir/hutch.mutate"
"$work/hutch-oci" "$user" delete --force ctl >/dev/null 2>&1
if grep -qx "$uid ctl-$$" "$dir/log" 2>/dev/null; then
	echo "ok: the wrapper ran the user's hutch as uid $uid with the user's hutch.mutate"
else
	echo "FAIL: control: the user's hutch did not run as $uid with HUTCH_MUTATE=ctl-$$: $(cat "$dir/log" 2>&1)"
	fail=1
fi

# The attack: hutch.mutate names a file only root can read.
as_user sh -c 'rm -f "$2" "$3" && ln -s "$1" "$2"' - "$work/private/secret" "$dir/hutch.mutate" "$dir/log"
"$work/hutch-oci" "$user" delete --force evil >/dev/null 2>&1
if grep -q "root-secret-$$" "$dir/log" 2>/dev/null; then
	echo "ESCAPED: root's wrapper read the user's hutch.mutate symlink and handed $(grep -o "root-secret-$$" "$dir/log") to the user's hutch"
	fail=1
elif grep -q "^0 " "$dir/log" 2>/dev/null; then
	echo "ESCAPED: the user's hutch ran as root"
	fail=1
elif grep -qx "$uid " "$dir/log" 2>/dev/null; then
	echo "blocked: a hutch.mutate symlink to a root-only file: the wrapper read it as the user, who cannot"
else
	echo "FAIL: the user's hutch did not run: $(cat "$dir/log" 2>&1)"
	fail=1
fi
exit "$fail"
