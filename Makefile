# hutch's Makefile wraps go; CI calls make (see .ci/run).

PREFIX ?= $(if $(filter 0,$(shell id -u)),/usr/local,$(HOME)/.local)
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
GOFMT ?= $(shell command -v gofmt || echo $(dir $(GO))gofmt)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
HUTCH_TEST_USER ?= hutchtest
export HUTCH_TEST_USER

# A static binary starts about 1 ms faster than a cgo one (no dynamic
# loader), and hutch starts twice per sandbox. urfave_cli_no_docs drops the
# man-page generator from the binary.
GOFLAGS_BUILD = -trimpath -tags urfave_cli_no_docs,hutch_embed_init -ldflags "-s -w -X main.Version=$(VERSION) -X $(INIT_SUM_VAR)=$$(sha256sum bin/hutch-init | cut -d' ' -f1)" -overlay bin/hutch-init.overlay.json
export CGO_ENABLED = 0
# hutch-init, PID 1 of every sandbox, is a small binary of its own
# (cmd/hutch-init): built first, with the same cgo setting, embedded in
# hutch (internal/initexe, tag hutch_embed_init) through an overlay that
# shows bin/hutch-init as internal/initexe/hutch-init, so the source tree
# stays as it is. One file is installed; hutch runs init from a cached
# copy or a sealed memfd (internal/initexe). A plain `go build ./cmd/hutch` has no embedded init and
# re-executes itself instead (docs/security.md, "Build variants").
# hutch runs the embedded init from a per-user cached copy named by its
# sha256, linked into hutch (computed by the shell in the recipe, once
# bin/hutch-init is built); a build without it uses the memfd every run.
GOFLAGS_INIT = -trimpath -ldflags "-s -w"
INIT_SUM_VAR = github.com/hutch-sandbox/hutch/internal/initexe.Sum

RUNTIME_DEPS = uidmap fuse-overlayfs fuse3 slirp4netns passt iproute2 busybox-static curl
# What the tests run inside sandboxes besides the runtime helpers; Slurm
# and munge for the one-node cluster of the Slurm tests (make slurm-up).
# npm comes with nodejs where that is NodeSource's (which conflicts with
# Debian's npm): test-deps asks for Debian's only when no npm is there.
TEST_DEPS = procps python3 util-linux tmux openssh-client git slurm-wlm munge nodejs openssh-server postgresql redis-server redis-tools
# make test-cgo builds the tests with cgo, as `go build` does where a C
# compiler is installed.
CGO_DEPS = gcc libc6-dev
BENCH_DEPS = bubblewrap hyperfine iperf3 podman rootlesskit postgresql redis-server

.PHONY: all build install deps test-deps bench-deps test test-unit test-integration test-cgo test-oci-root test-user slurm-up mutate bench lint clean

all: build

# After "sudo make install", bin/ goes back to the user who owns the checkout.
build:
	$(GO) build $(GOFLAGS_INIT) -o bin/hutch-init ./cmd/hutch-init
	@mkdir -p bin && printf '{"Replace":{"%s/internal/initexe/hutch-init":"%s/bin/hutch-init"}}\n' "$(CURDIR)" "$(CURDIR)" >bin/hutch-init.overlay.json
	$(GO) build $(GOFLAGS_BUILD) -o bin/hutch ./cmd/hutch
	@if [ -n "$${SUDO_UID:-}" ]; then chown -R "$$SUDO_UID:$$SUDO_GID" bin; fi

# install also loads an AppArmor profile for the installed binary where
# AppArmor restricts user namespaces (Ubuntu 23.10+); not into a DESTDIR.
install: build
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 bin/hutch $(DESTDIR)$(BINDIR)/hutch
	@if [ -z "$(DESTDIR)" ]; then scripts/install-apparmor.sh "$$(cd $(BINDIR) && pwd)/hutch"; fi

# deps installs what hutch runs with (as root). It skips apt-get when
# everything is already there.
DEPS ?= $(RUNTIME_DEPS)
deps:
	@missing=""; for p in $(DEPS); do \
		dpkg-query -W -f '$${Status}' $$p 2>/dev/null | grep -q ' installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all installed: $(DEPS)"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "deps: missing:$$missing; run as root: sudo make deps" >&2; exit 1; fi; \
	echo "deps: installing:$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

# nektos/act, a GitHub Actions engine, drives a workflow through hutch
# (TestActWorkflow). As root it goes to /usr/local/bin, on the test user's
# PATH; otherwise to your GOPATH/bin, where the test also looks.
ACT_VERSION = 0.2.89

# test-deps installs what the tests run besides hutch's own helpers.
test-deps:
	$(MAKE) deps DEPS="$(TEST_DEPS) $(CGO_DEPS) $$(command -v npm >/dev/null || echo npm)"
	@if act --version 2>/dev/null | grep -q ' $(ACT_VERSION)$$' || \
	    "$$($(GO) env GOPATH)/bin/act" --version 2>/dev/null | grep -q ' $(ACT_VERSION)$$'; then \
		echo "test-deps: act $(ACT_VERSION) installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
		GOBIN=/usr/local/bin $(GO) install github.com/nektos/act@v$(ACT_VERSION); \
	else \
		$(GO) install github.com/nektos/act@v$(ACT_VERSION); \
	fi

bench-deps:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(BENCH_DEPS) || \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bubblewrap hyperfine iperf3

# test runs everything. As root it runs the whole suite as the unprivileged
# $(HUTCH_TEST_USER) (created by test-user): a sandbox test run as root
# proves nothing. It builds first, so that CI also proves make build's
# binary (hutch-init embedded) links; the suite itself runs the same
# hutch-init, built by cmd/hutch's TestMain with the same flags.
test: build
ifeq ($(shell id -u),0)
	$(MAKE) test-user
	scripts/run-as-test-user.sh $(GO) test -count=1 ./...
else
	$(GO) test -count=1 ./...
endif

# test-unit runs the packages below cmd/: mostly pure tests, with no
# sandbox started (as root, still as the test user, like everything else).
UNIT_PKGS = ./userns/... ./profiles/... ./slirp/... ./sandbox/... ./image/... ./internal/...

test-unit:
ifeq ($(shell id -u),0)
	$(MAKE) test-user
	scripts/run-as-test-user.sh $(GO) test -count=1 $(UNIT_PKGS)
else
	$(GO) test -count=1 $(UNIT_PKGS)
endif

test-integration:
ifeq ($(shell id -u),0)
	$(MAKE) test-user
	scripts/run-as-test-user.sh $(GO) test -count=1 ./cmd/...
else
	$(GO) test -count=1 ./cmd/...
endif

# mutate switches each defence off in turn (a build with -tags
# hutch_mutate, internal/mutate) and fails if its tests still pass
# (scripts/mutate.sh holds the table). Run it before resolving a security
# issue; it is too slow for every CI run. MUTATE=NAME... runs some rows.
mutate:
ifeq ($(shell id -u),0)
	$(MAKE) test-user
	scripts/run-as-test-user.sh scripts/mutate.sh $(MUTATE)
else
	scripts/mutate.sh $(MUTATE)
endif

# test-cgo runs the privilege and escape checks in a cgo build: hutch
# built with plain `go build` or `go install` where a C compiler is
# installed takes other paths (init drops its capabilities through psx and
# libc's threads), and must hold the same privileges.
CGO_SCRIPTS = TestScripts/^(escape_.*|run_identity|run_process)$$
CGO_TESTS = ^(TestEscape.*|TestCgoBuild|TestRunNested)$$

test-cgo:
ifeq ($(shell id -u),0)
	$(MAKE) test-user
	HUTCH_TEST_CGO=1 scripts/run-as-test-user.sh $(GO) test -count=1 -run '$(CGO_SCRIPTS)' ./cmd/hutch/
	HUTCH_TEST_CGO=1 scripts/run-as-test-user.sh $(GO) test -count=1 -run '$(CGO_TESTS)' ./cmd/hutch/
else
	CGO_ENABLED=1 HUTCH_TEST_CGO=1 $(GO) test -count=1 -run '$(CGO_SCRIPTS)' ./cmd/hutch/
	CGO_ENABLED=1 HUTCH_TEST_CGO=1 $(GO) test -count=1 -run '$(CGO_TESTS)' ./cmd/hutch/
endif

# test-oci-root runs root's hutch oci delete against containers, and
# traps, that $(HUTCH_TEST_USER) made (as Slurm deletes its users'
# containers), and the Slurm test cluster's wrapper as root against what
# that user plants beside their hutch: root only (scripts/oci-root-delete.sh,
# scripts/slurm-wrapper-root.sh).
test-oci-root:
	$(MAKE) test-user
	scripts/oci-root-delete.sh
	scripts/slurm-wrapper-root.sh

# test-user creates $(HUTCH_TEST_USER) with /etc/subuid and /etc/subgid
# ranges and a runtime directory (as root; idempotent).
test-user:
	scripts/test-user.sh $(HUTCH_TEST_USER)

# slurm-up starts the one-node Slurm cluster on 127.0.0.1 whose container
# jobs run in hutch, for the Slurm tests (as root; idempotent;
# docs/slurm.md). scripts/slurm-up.sh logs prints its daemons' logs.
slurm-up:
	scripts/slurm-up.sh up

# bench measures hutch against bwrap, unshare, rootlesskit, podman and
# native runs (docs/performance.md). It never measures as root: as root it
# re-runs itself as $(HUTCH_TEST_USER).
bench: build
ifeq ($(shell id -u),0)
	$(MAKE) test-user
endif
	$(GO) run ./bench $(BENCH_ARGS)

lint:
	@out=$$(find . -name '*.go' -not -path './.git/*' -not -path './bin/*' | xargs $(GOFMT) -l); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

clean:
	rm -rf bin
