#!/bin/bash
# run-as-test-user.sh CMD...: run CMD as $HUTCH_TEST_USER (created by
# scripts/test-user.sh) in a copy of this source tree that the user owns:
# the checkout may sit under /root, which the user cannot read. Each run
# gets its own copy, removed afterwards, so two runs do not collide. The
# user has its own Go caches (kept between runs); HUTCH_TEST_STRICT,
# HUTCH_TEST_CGROUP, HUTCH_TEST_CMD_TIMEOUT, CI, GOPROXY and GOFLAGS pass
# through. Builds are without cgo, as the Makefile builds hutch, unless
# HUTCH_TEST_CGO=1 (make test-cgo). Root only.
set -euo pipefail
user=${HUTCH_TEST_USER:-hutchtest}
if [ "$(id -u)" != 0 ]; then
	echo "run-as-test-user.sh: run as root (make test does, when run as root)" >&2
	exit 1
fi
home=$(getent passwd "$user" | cut -d: -f6)
uid=$(id -u "$user")
gid=$(id -g "$user")
go=$(readlink -f "$(command -v go || echo /usr/local/go/bin/go)")
goroot=$(dirname "$(dirname "$go")")
src=$(cd "$(dirname "$0")/.." && pwd)

dst=$(mktemp -d "$home/hutch-src.XXXXXX")
trap 'rm -rf "$dst"' EXIT
tar -C "$src" --exclude=./bin --exclude=./.git -cf - . | tar -C "$dst" -xf -
chown -R "$user:" "$dst"
chmod 0755 "$dst"
# What a systemd login would give: a private XDG_RUNTIME_DIR.
install -d -m 0700 -o "$uid" -g "$gid" "/run/user/$uid"

cd "$dst"
status=0
runuser -u "$user" -- env -i \
	HOME="$home" USER="$user" LOGNAME="$user" \
	PATH="$goroot/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
	XDG_RUNTIME_DIR="/run/user/$uid" \
	GOPATH="$home/go" GOCACHE="$home/.cache/go-build" GOMODCACHE="$home/go/pkg/mod" \
	GOPROXY="${GOPROXY:-$("$go" env GOPROXY 2>/dev/null || echo https://proxy.golang.org,direct)}" \
	GOFLAGS="${GOFLAGS:-}" GOTOOLCHAIN=local \
	HUTCH_TEST_STRICT="${HUTCH_TEST_STRICT:-}" CI="${CI:-}" TERM=dumb HUTCH_TEST_CGO="${HUTCH_TEST_CGO:-}" CGO_ENABLED="${HUTCH_TEST_CGO:-0}" \
	HUTCH_TEST_CGROUP="${HUTCH_TEST_CGROUP:-}" HUTCH_TEST_CMD_TIMEOUT="${HUTCH_TEST_CMD_TIMEOUT:-}" \
	"$@" || status=$?
exit "$status"
