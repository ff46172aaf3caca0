#!/bin/bash
# mutate.sh [NAME...]: prove each defence by breaking it. For each row of
# the table below, run the matching tests from a build with
# -tags hutch_mutate and HUTCH_MUTATE=NAME (internal/mutate switches that
# one defence off) and expect them to FAIL. A row whose tests still pass
# is a defence no test notices: "SURVIVED", and a non-zero exit. First,
# the same tests run with no mutation and must pass.
#
# Run it as the test user (make mutate does, through
# scripts/run-as-test-user.sh): a sandbox test run as root proves nothing.
# A new defence is one new line: NAME PACKAGE TEST-REGEX.
#
# Not in the table, because no behaviour changes without them (equivalent
# mutants): nodev on the fuse-overlayfs mount (libfuse mounts nodev by
# default; hutch restates it), and nosuid/nodev on the read-only rebinds
# of /proc/sys, /proc/irq, /proc/bus and /proc/fs (a bind keeps the flags
# of the /proc it comes from).
set -uo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}

# name | package | go test -run regex
table='
seccomp-keyring      ./cmd/hutch        TestEscapeSeccompGroups|TestScripts/escape_kernel
seccomp-kernel       ./cmd/hutch        TestEscapeSeccompGroups|TestScripts/escape_kernel
seccomp-handles      ./cmd/hutch        TestEscapeSeccompGroups|TestScripts/escape_kernel
seccomp-io_uring     ./cmd/hutch        TestEscapeSeccompGroups|TestScripts/escape_kernel
seccomp-tty          ./cmd/hutch        TestEscapeSeccompGroups|TestEscapeTIOCSTI
seccomp-personality  ./cmd/hutch        TestEscapeSeccompGroups|TestScripts/escape_kernel
seccomp-mount        ./cmd/hutch        TestEscapeSeccompGroups
seccomp-userns       ./cmd/hutch        TestEscapeSeccompGroups|TestScripts/escape_kernel
nnp                  ./cmd/hutch        TestScripts/escape_kernel
caps                 ./cmd/hutch        TestScripts/escape_kernel
cloexec              ./cmd/hutch        TestScripts/run_process
prestart-fits        ./cmd/hutch        TestScripts/run_prestart
prestart-fits        ./sandbox/supervise TestPrestartedFits
env-secrets          ./cmd/hutch        TestScripts/run_process
env-secrets          ./sandbox          TestPlan
setsid               ./cmd/hutch        TestEscapeTIOCSTI
setsid               ./cmd/hutch        TestRunNoTTYSetsid
dumpable             ./cmd/hutch        TestScripts/escape_files|TestScripts/escape_kernel|TestScripts/overlay_escape
init-seal            ./cmd/hutch        TestEscapeInitExe
init-cache-check     ./cmd/hutch        TestEscapeInitExe
init-cache-check     ./internal/initexe TestCheckFile|TestCached
hide-secrets         ./cmd/hutch        TestScripts/escape_files
hide-runtime         ./cmd/hutch        TestScripts/escape_files
hide-runtime         ./cmd/hutch        TestEscapeInitExe/cached-hidden
hide-state           ./cmd/hutch        TestScripts/overlay_escape
oci-nofollow         ./oci              TestStoreRefusesPlantedLinks
oci-pid-owner        ./oci              TestSignalOnlyRecordedProcess
hide-relocated       ./cmd/hutch        TestScripts/oci_site
hide-relocated       ./cmd/hutch        TestScripts/run_bind
trust-filesystem.bind ./profiles        TestTrust$
oci-bind-hidden      ./cmd/hutch        TestScripts/oci_site|TestSlurmEscapeSSH
nosuid-root          ./cmd/hutch        TestScripts/escape_files
nosuid-bind          ./cmd/hutch        TestScripts/escape_files
nosuid-tmpfs         ./cmd/hutch        TestScripts/escape_files
nosuid-overlay       ./cmd/hutch        TestScripts/overlay_escape
nosuid-fuse          ./cmd/hutch        TestScripts/overlay_escape
nodev-root           ./cmd/hutch        TestScripts/escape_files
nodev-bind           ./cmd/hutch        TestScripts/escape_files
nodev-tmpfs          ./cmd/hutch        TestScripts/escape_files
nodev-overlay        ./cmd/hutch        TestScripts/overlay_escape
trust-filesystem.rw       ./profiles    TestTrust$
trust-filesystem.ro       ./profiles    TestTrust$
trust-filesystem.root     ./profiles    TestTrust$
trust-filesystem.project  ./profiles    TestTrust$
trust-filesystem.home     ./profiles    TestTrust$
trust-network.mode        ./profiles    TestTrust$
trust-network.allow       ./profiles    TestTrust$
trust-network.ports       ./profiles    TestTrust$
trust-network.host_loopback ./profiles  TestTrust$
trust-network.learn       ./profiles    TestTrust$
trust-security.nested     ./profiles    TestTrust$
trust-security.seccomp    ./profiles    TestTrust$
trust-env.keep            ./profiles    TestTrust$
trust-env.set             ./profiles    TestTrust$
trust-limits.memory       ./profiles    TestTrust$
trust-limits.pids         ./profiles    TestTrust$
trust-limits.cpu          ./profiles    TestTrust$
trust-limits.nofile       ./profiles    TestTrust$
trust-limits.nproc        ./profiles    TestTrust$
trust-limits.fsize        ./profiles    TestTrust$
trust-process.timeout     ./profiles    TestTrust$
trust-limits.required     ./profiles    TestTrust$
apply-symlink-out    ./sandbox/layers   TestApply
apply-follow         ./sandbox/layers   TestApply
apply-runlater       ./cmd/hutch        TestScripts/overlay_runlater
trust-filesystem.git      ./profiles    TestTrust$
trust-filesystem.tmpfs    ./profiles    TestTrust$
trust-process.user        ./profiles    TestTrust$
trust-filesystem.hide     ./profiles    TestTrust$
trust-filesystem.sockets  ./profiles    TestTrust$
trust-process.dotfiles    ./profiles    TestTrust$
trust-limits.tmpfs        ./profiles    TestTrust$
trust-limits.inotify_instances ./profiles TestTrust$
trust-limits.inotify_watches   ./profiles TestTrust$
trust-limits.quiet        ./profiles    TestTrust$
trust-process.kill_grace  ./profiles    TestTrust$
trust-symlink        ./cmd/hutch        TestScripts/profile_trust_place
place-shared         ./cmd/hutch        TestEscapeSharedProject
place-secret         ./cmd/hutch        TestScripts/escape_secret_project
hide-targets         ./cmd/hutch        TestScripts/escape_secret_project
git-protect          ./cmd/hutch        TestScripts/git_protect
dotfiles-secret      ./cmd/hutch        TestScripts/shell_dotfiles
dotfiles-gitconfig   ./cmd/hutch        TestScripts/shell_dotfiles
result-path          ./cmd/hutch        TestEscapeResultRedirect
result-fd            ./cmd/hutch        TestEscapeResultFD
dns-deny             ./cmd/hutch        TestNetProxyDNS
dns-deny             ./slirp/proxy      TestSandboxDNS
dns-refused          ./cmd/hutch        TestNetProxyDNS
dns-refused          ./slirp/proxy      TestSandboxDNS
dns-tcp-bound        ./cmd/hutch        TestNetDNSHostile
dns-tcp-bound        ./slirp/dns        TestServeTCP
learn-names          ./slirp/proxy      TestLearn
learn-link           ./cmd/hutch        TestNetLearn
wire-claimed-name    ./cmd/hutch        TestNetTransparent$
wire-claimed-name    ./slirp/proxy      TestJudge
wire-port            ./cmd/hutch        TestNetTransparent$
wire-port            ./slirp/proxy      TestJudge
wire-bare-ip         ./slirp/proxy      TestJudge|TestHandleRedirected
wire-one-request     ./slirp/proxy      TestHandleRedirectedOneRequest
udp-deny             ./cmd/hutch        TestNetTransparent$
udp-deny             ./slirp/redirect   TestInstall
caps                 ./cmd/hutch        TestNetTransparent$
service-home         ./cmd/hutch        TestScripts/services_escape|TestScripts/services_image
service-pidns        ./cmd/hutch        TestScripts/services$
service-ipcns        ./cmd/hutch        TestScripts/services$
caps                 ./cmd/hutch        TestScripts/services_escape
trust-services.db.data    ./profiles    TestTrust$
trust-services.db.image   ./profiles    TestTrust$
trust-services.db.env     ./profiles    TestTrust$
oci-root-hidden      ./cmd/hutch        TestScripts/oci_root_hidden
oci-delete-wait      ./oci              TestDeleteByAnotherDoesNotWaitForEver
service-image-hold   ./cmd/hutch        TestServiceImageHeldAndKill9
'

rows=()
while read -r name pkg regex; do
	[ -z "$name" ] && continue
	if [ $# -gt 0 ]; then
		keep=; for want in "$@"; do [ "$want" = "$name" ] && keep=1; done
		[ -z "$keep" ] && continue
	fi
	rows+=("$name $pkg $regex")
done <<<"$table"

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=hutch_mutate" HUTCH_TEST_STRICT=1
# hutch-init as make build embeds it (with the tag: its defences have
# switches too), built once for every run; cmd/hutch's TestMain would
# build it in each.
if ! $go build -trimpath -ldflags '-s -w' -o "$log/hutch-init" ./cmd/hutch-init; then
	echo "mutate: building hutch-init failed" >&2
	exit 1
fi
export HUTCH_TEST_INIT="$log/hutch-init"
start=$SECONDS

# Each package's test binary is built once; every row runs it.
declare -A bin
for row in "${rows[@]}"; do
	read -r _ pkg _ <<<"$row"
	[ -n "${bin[$pkg]:-}" ] && continue
	b="$log/$(echo "$pkg" | tr / _).test"
	if ! $go test -c -o "$b" "$pkg"; then
		echo "mutate: building the tests of $pkg failed" >&2
		exit 1
	fi
	bin[$pkg]=$b
done
runrow() { # NAME PKG REGEX: run the tests in the package's directory
	(cd "$2" && HUTCH_MUTATE="$1" "${bin[$2]}" -test.count=1 -test.timeout=10m -test.run "$3") >"$log/$1.out" 2>&1
}

# The control: with no mutation every row's tests pass.
for row in "${rows[@]}"; do
	read -r name pkg regex <<<"$row"
	if ! runrow "" "$pkg" "$regex"; then
		echo "mutate: with no mutation, $pkg -run '$regex' fails:" >&2
		tail -30 "$log/.out" >&2
		exit 1
	fi
done

survived=0
printf '| Mutation | Tests | Result |\n|---|---|---|\n'
for row in "${rows[@]}"; do
	read -r name pkg regex <<<"$row"
	if runrow "$name" "$pkg" "$regex"; then
		result=SURVIVED
		survived=$((survived + 1))
	else
		result=caught
	fi
	printf '| `%s` | `%s` %s | %s |\n' "$name" "$pkg" "${regex//|/ \\| }" "$result"
done
echo
echo "mutate: ${#rows[@]} mutations, $survived survived, $((SECONDS - start)) s"
[ "$survived" -eq 0 ]
