#!/bin/bash
# slurm-up.sh [up|down|logs]: a one-node Slurm cluster on 127.0.0.1 whose
# container jobs (srun/sbatch --container=BUNDLE) run in hutch, for the
# Slurm tests (cmd/hutch/slurm_test.go; docs/slurm.md). Root only;
# Debian 12's slurm-wlm and munge (make test-deps installs them).
#
#   up    write the munge key, slurm.conf, oci.conf, job_submit.lua, the
#         site profile and the runtime wrapper; start munged, slurmctld
#         and slurmd (each only when it is not already answering, or when
#         its configuration changed); wait until sinfo shows the node
#         idle. Idempotent.
#   down  stop the three daemons this script started.
#   logs  print the daemons' logs (CI prints them when a run fails).
#
# Which hutch the jobs run. slurmstepd runs oci.conf's commands through
# /bin/sh -c: RunTimeRun as the job's user, RunTimeQuery, RunTimeKill and
# RunTimeDelete as root. oci.conf names a root-owned wrapper, $wrapper,
# that runs the hutch each user installed at
#   ~USER/.local/libexec/hutch-slurm-test/hutch
# (the Slurm tests copy the hutch they just built there, with a rename,
# before their first job), always as that user: when slurmstepd calls it as
# root, the wrapper drops to the job's user first, because root must never
# run a binary an unprivileged user can replace. So CI exercises the
# same-user path end to end; a production oci.conf names a root-owned hutch
# directly (docs/slurm.md).
#
# Slurm's own files: /etc/slurm/{slurm.conf,oci.conf,job_submit.lua} (where
# Debian's client commands look, so the test user needs no SLURM_CONF), the site
# profile /etc/hutch/slurm-site.toml, and state, spool, pid files and logs
# under $base. A slurm.conf this script did not write is never replaced.
set -euo pipefail
cd "$(dirname "$0")/.."

base=/var/lib/hutch-slurm
conf=/etc/slurm
site=/etc/hutch/slurm-site.toml
wrapper=/usr/local/libexec/hutch-slurm-test/hutch-oci
node=hutch-node
marker='# Written by hutch scripts/slurm-up.sh'
wait_secs=${HUTCH_SLURM_WAIT:-60}

die() {
	echo "slurm-up.sh: $*" >&2
	exit 1
}

logs() {
	local f n
	for f in "$base"/munge/munged.log "$base"/log/slurmctld.log "$base"/log/slurmd.log; do
		[ -e "$f" ] || continue
		n=60
		# munged logs each credential root cannot decode: noise.
		[ "${f##*/}" = munged.log ] && n=15
		echo "== $f (last $n lines)"
		tail -n "$n" "$f"
	done
}

# pid_alive FILE: the pid in FILE names a live process.
pid_alive() {
	[ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# stop NAME: stop the daemon whose pid file is $base/run/NAME.pid and wait
# (bounded) until it has gone.
stop() {
	local f=$base/run/$1.pid pid
	pid_alive "$f" || { rm -f "$f"; return 0; }
	pid=$(cat "$f")
	kill "$pid"
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
		sleep 0.1
	done
	die "$1 (pid $pid) did not stop within 10 s"
}

# install_if_changed SRC DST MODE OWNER: replace DST with SRC when they
# differ; true (0) when DST changed.
install_if_changed() {
	if [ -e "$2" ] && cmp -s "$1" "$2"; then
		rm -f "$1"
		return 1
	fi
	install -m "$3" -o "${4%:*}" -g "${4#*:}" "$1" "$2"
	rm -f "$1"
}

# wrapper_text [REL [SELF]]: the runtime wrapper oci.conf names, which runs
# ~USER/REL (default .local/libexec/hutch-slurm-test/hutch) and is
# installed at SELF (default $wrapper). scripts/slurm-wrapper-root.sh
# writes one with its own REL and SELF to run it as root.
wrapper_text() {
	local rel=${1:-.local/libexec/hutch-slurm-test/hutch} self=${2:-$wrapper}
	cat <<EOF
#!/bin/bash
$marker: oci.conf's runtime for the Slurm tests.
# hutch-oci USER ARGS...: run USER's own hutch (the one the Slurm tests
# installed at ~USER/.local/libexec/hutch-slurm-test/hutch) as
#   hutch oci --profile $site ARGS...
# always as USER: slurmstepd runs RunTimeRun as the job's user and
# RunTimeQuery/Kill/Delete as root; as root this drops to USER, because
# root must never run a binary an unprivileged user can replace.
set -euo pipefail
user=\${1:?usage: hutch-oci USER ARGS...}
shift
ent=\$(getent passwd "\$user") || { echo "hutch-oci: no user \$user" >&2; exit 1; }
uid=\$(echo "\$ent" | cut -d: -f3)
gid=\$(echo "\$ent" | cut -d: -f4)
home=\$(echo "\$ent" | cut -d: -f6)
# As root, drop to USER before anything else and run this wrapper again:
# nothing under USER's home is looked at as root, let alone run (a
# hutch.mutate symlinked to /etc/shadow would be read by root and handed
# to USER's hutch; scripts/slurm-wrapper-root.sh checks).
if [ "\$(id -u)" = 0 ] && [ "\$uid" != 0 ]; then
	exec setpriv --reuid="\$uid" --regid="\$gid" --init-groups -- "$self" "\$user" "\$@"
fi
if [ "\$(id -u)" != "\$uid" ]; then
	echo "hutch-oci: called by uid \$(id -u) for \$user" >&2
	exit 1
fi
bin=\$home/$rel
if [ ! -x "\$bin" ]; then
	echo "hutch-oci: \$bin is missing: the Slurm tests install the hutch they test there" >&2
	exit 1
fi
# slurmstepd's environment is the daemon's, not the job's (the job's env
# is in the bundle's config.json): give hutch the user's own.
env=(env -i "HOME=\$home" "USER=\$user" "LOGNAME=\$user"
	"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" "XDG_RUNTIME_DIR=/run/user/\$uid")
# make mutate's switch, which the tests cannot pass through Slurm: they
# leave it beside the binary (it acts only in a -tags hutch_mutate build).
if [ -s "\$bin.mutate" ]; then
	env+=("HUTCH_MUTATE=\$(head -c 64 "\$bin.mutate")")
fi
exec "\${env[@]}" "\$bin" oci --profile "$site" "\$@"
EOF
}

# write_configs writes every file; restart=1 when slurm.conf changed.
restart=0
write_configs() {
	local tmp cpus
	if [ -e "$conf/slurm.conf" ] && ! head -n 1 "$conf/slurm.conf" | grep -qF "$marker"; then
		die "$conf/slurm.conf was not written by this script; refusing to replace it (move it away to use the test cluster)"
	fi
	install -d -m 0755 "$conf" /etc/hutch "$(dirname "$wrapper")" "$base" "$base/run"
	install -d -m 0755 -o slurm -g slurm "$base/ctld"
	install -d -m 0755 -o slurm -g slurm "$base/log"
	# slurmstepd makes each step's bundle copy here, owned by the job's user.
	install -d -m 0755 "$base/spool"
	install -d -m 0700 -o munge -g munge /etc/munge "$base/munge"
	install -d -m 0755 -o munge -g munge /run/munge
	if [ ! -s /etc/munge/munge.key ]; then
		head -c 128 /dev/urandom > /etc/munge/munge.key
		chown munge:munge /etc/munge/munge.key
		chmod 0400 /etc/munge/munge.key
	fi

	# Tests run jobs side by side (one waits a minute for its time limit):
	# the node offers more CPUs than the machine has (config_overrides).
	cpus=8
	tmp=$(mktemp)
	cat > "$tmp" <<EOF
$marker: the one-node test cluster.
ClusterName=hutch-test
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$base/ctld
SlurmdSpoolDir=$base/spool
SlurmctldPidFile=$base/run/slurmctld.pid
SlurmdPidFile=$base/run/slurmd.pid
SlurmctldLogFile=$base/log/slurmctld.log
SlurmdLogFile=$base/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=debug
# cgroup v2 is not delegated on CI machines: processes are tracked by their
# parent pids, and tasks are not bound to CPUs.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
# Finished jobs stay visible to scontrol show job for ten minutes; a
# cancelled or timed-out step gets SIGKILL 2 s after SIGTERM.
MinJobAge=600
KillWait=2
OverTimeLimit=0
InactiveLimit=0
SlurmdTimeout=60
NodeName=$node NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
# Jobs in "contained" must name a bundle: job_submit.lua refuses the others.
PartitionName=contained Nodes=$node MaxTime=INFINITE State=UP OverSubscribe=YES
JobSubmitPlugins=lua
EOF
	if install_if_changed "$tmp" "$conf/slurm.conf" 0644 root:root; then
		restart=1
	fi

	# docs/slurm.md's oci.conf, but for the wrapper. slurmstepd runs each
	# line with sh -c: %u the job's user, %b the bundle slurmstepd wrote
	# (its config.json has the job's command, env and the bundle's
	# rootfs), %n.%j.%s.%t node, job, step and task: the container's id.
	# After RunTimeRun, slurmstepd asks for the state of the container
	# that run removed, and prints any answer but JSON into the job's
	# stderr: a missing container reads as stopped (\042 is a double
	# quote, which the value's own quotes cannot hold; Slurm reads \\ as
	# one backslash).
	tmp=$(mktemp)
	cat > "$tmp" <<EOF
$marker: jobs with --container run in hutch.
RunTimeRun="$wrapper %u run --bundle %b %n.%j.%s.%t"
RunTimeQuery="$wrapper %u state %n.%j.%s.%t 2>/dev/null || printf '{\\\\042status\\\\042:\\\\042stopped\\\\042}'"
RunTimeKill="$wrapper %u kill %n.%j.%s.%t SIGTERM"
RunTimeDelete="$wrapper %u delete --force %n.%j.%s.%t"
EOF
	install_if_changed "$tmp" "$conf/oci.conf" 0644 root:root || true

	# docs/slurm.md's job_submit.lua, for the partition "contained" only:
	# the tests' control jobs run bare in "debug".
	tmp=$(mktemp)
	cat > "$tmp" <<'EOF'
-- Written by hutch scripts/slurm-up.sh: jobs in the partition "contained"
-- must run in hutch (docs/slurm.md).
function slurm_job_submit(job_desc, part_list, submit_uid)
	if job_desc.partition ~= "contained" or submit_uid == 0 then
		return slurm.SUCCESS
	end
	if job_desc.container == nil or job_desc.container == "" then
		slurm.log_user("this cluster runs every job in hutch: submit with --container=BUNDLE")
		return slurm.ERROR
	end
	return slurm.SUCCESS
end

function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
	return slurm.SUCCESS
end
EOF
	install_if_changed "$tmp" "$conf/job_submit.lua" 0644 root:root || true

	tmp=$(mktemp)
	cat > "$tmp" <<'EOF'
# Written by hutch scripts/slurm-up.sh: the administrator's policy for every
# Slurm job that runs in hutch. A job's bundle cannot widen it.
[network]
mode = "none"

[filesystem]
hide = ["~/.ssh"]
EOF
	install_if_changed "$tmp" "$site" 0644 root:root || true

	tmp=$(mktemp)
	wrapper_text >"$tmp"
	install_if_changed "$tmp" "$wrapper" 0755 root:root || true
}

start_munged() {
	if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
		return 0
	fi
	stop munged
	runuser -u munge -- /usr/sbin/munged --pid-file="$base/munge/munged.pid" \
		--log-file="$base/munge/munged.log" --seed-file="$base/munge/munged.seed"
	cp "$base/munge/munged.pid" "$base/run/munged.pid"
	for _ in $(seq 50); do
		munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	logs >&2
	die "munged does not answer (munge -n | unmunge) after 5 s"
}

# up waits for the node: each poll is one sinfo call, bounded by
# $wait_secs in all.
up() {
	local state
	[ "$(id -u)" = 0 ] || die "run as root (it starts daemons)"
	for p in munged slurmctld slurmd sinfo setpriv; do
		command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] ||
			die "$p is not installed (make test-deps installs slurm-wlm and munge)"
	done
	write_configs
	start_munged
	if [ "$restart" = 1 ]; then
		stop slurmd
		stop slurmctld
	fi
	if ! pid_alive "$base/run/slurmctld.pid"; then
		# -i: a state saved by an earlier cluster with other settings is
		# dropped rather than refused.
		/usr/sbin/slurmctld -i || { logs >&2; die "slurmctld did not start"; }
	fi
	if ! pid_alive "$base/run/slurmd.pid"; then
		/usr/sbin/slurmd -N "$node" || { logs >&2; die "slurmd did not start"; }
	fi
	local deadline=$((SECONDS + wait_secs))
	while [ "$SECONDS" -lt "$deadline" ]; do
		state=$(sinfo -h -N -n "$node" -p debug -o %T 2>/dev/null || true)
		case $state in
		idle | mixed | allocated)
			echo "slurm-up.sh: node $node is $state"
			return 0
			;;
		down* | drain*)
			scontrol update nodename="$node" state=resume 2>/dev/null || true
			;;
		esac
		sleep 0.5
	done
	logs >&2
	die "node $node is not idle after ${wait_secs} s (sinfo says: ${state:-nothing})"
}

case ${1:-up} in
up) up ;;
down)
	stop slurmd
	stop slurmctld
	stop munged
	;;
logs) logs ;;
wrapper-text) wrapper_text "${2:-}" "${3:-}" ;;
*) die "usage: slurm-up.sh [up|down|logs]" ;;
esac
