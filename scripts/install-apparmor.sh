#!/bin/bash
# install-apparmor.sh BIN: on kernels that restrict unprivileged user
# namespaces through AppArmor (Ubuntu 23.10 and later:
# kernel.apparmor_restrict_unprivileged_userns = 1), load a profile that
# lets BIN, and only BIN, create them, as Ubuntu does for podman and
# bwrap. Elsewhere it does nothing. Root only; called by make install.
set -euo pipefail
bin=$1
restrict=/proc/sys/kernel/apparmor_restrict_unprivileged_userns
if [ "$(cat "$restrict" 2>/dev/null || echo 0)" != 1 ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apparmor_parser >/dev/null; then
	echo "install-apparmor.sh: AppArmor restricts user namespaces here; run 'hutch doctor' for the profile hutch needs" >&2
	exit 0
fi
cat > /etc/apparmor.d/hutch <<PROFILE
# Written by hutch's make install: lets hutch create user namespaces under
# kernel.apparmor_restrict_unprivileged_userns = 1.
abi <abi/4.0>,
include <tunables/global>

profile hutch $bin flags=(unconfined) {
  userns,

  include if exists <local/hutch>
}
PROFILE
apparmor_parser -r /etc/apparmor.d/hutch
echo "install-apparmor.sh: loaded /etc/apparmor.d/hutch for $bin"
