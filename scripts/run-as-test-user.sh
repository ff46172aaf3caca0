#!/bin/bash
# run-as-test-user.sh CMD...: run CMD as $HUTCH_TEST_USER on a copy of this
# source tree that the user owns (the checkout may sit under /root, which
# the user cannot read), with its own Go caches. HUTCH_TEST_STRICT and
# GOPROXY pass through.
set -euo pipefail
user=${HUTCH_TEST_USER:-hutchtest}
home=$(getent passwd "$user" | cut -d: -f6)
uid=$(id -u "$user")
src=$(cd "$(dirname "$0")/.." && pwd)
dst="$home/hutch-src"
rm -rf "$dst"
mkdir -p "$dst"
tar -C "$src" --exclude=./bin --exclude=./.git -cf - . | tar -C "$dst" -xf -
chown -R "$user:" "$dst"
goroot=$(dirname "$(dirname "$(readlink -f "$(command -v go || echo /usr/local/go/bin/go)")")")
cd "$dst"
exec runuser -u "$user" -- env -i \
	HOME="$home" USER="$user" LOGNAME="$user" \
	PATH="$goroot/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
	XDG_RUNTIME_DIR="/run/user/$uid" \
	GOPATH="$home/go" GOCACHE="$home/.cache/go-build" GOMODCACHE="$home/go/pkg/mod" \
	GOPROXY="${GOPROXY:-$(go env GOPROXY 2>/dev/null || echo https://proxy.golang.org,direct)}" \
	GOFLAGS="${GOFLAGS:-}" GOTOOLCHAIN=local \
	HUTCH_TEST_STRICT="${HUTCH_TEST_STRICT:-}" CI="${CI:-}" TERM=dumb CGO_ENABLED=0 \
	"$@"
