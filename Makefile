# berth: build, run, test and benchmark. See README.md.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
export CGO_ENABLED := 1

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/berth-runtime/berth/pkg/version.Version=$(VERSION)
CRI_TOOLS := v1.37.0
PREFIX    ?= /usr/local

.PHONY: all build deps run test test-unit test-e2e test-critest bench install clean fuzz lint

all: build

deps:
	@hack/install-deps.sh

# berth-runtime runs libcontainer: cgo (nsenter) and the seccomp tag.
# It lives only for one command (and as the container's init until the
# exec), twice per container created, so it is linked statically: no
# loader work at each start, and no process of it stays to share libc
# pages with. berth-shim, the per-pod monitor, links no libcontainer and
# no C: static, pure Go.
SHIM_TAGS := seccomp netgo osusergo

# berthd needs no C either: static, pure Go, so no libc and loader pages
# are mapped into it. grpcnotrace leaves out gRPC's golang.org/x/net/trace,
# whose html/template makes the linker keep every exported method of every
# type: about 3.7 MB of binary, nearly all of it resident.
BERTHD_TAGS := netgo osusergo grpcnotrace

build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags "$(BERTHD_TAGS)" -ldflags "$(LDFLAGS)" -o bin/berthd ./cmd/berthd
	$(GO) build -trimpath -tags "$(SHIM_TAGS)" -ldflags "$(LDFLAGS) -extldflags -static" -o bin/berth-runtime ./cmd/berth-runtime
	CGO_ENABLED=0 $(GO) build -trimpath -tags "netgo osusergo" -ldflags "$(LDFLAGS)" -o bin/berth-shim ./cmd/berth-shim
	$(CC) -static -Os -s -Wall -Wextra -Werror -o bin/berth-pidns-holder cmd/berth-pidns-holder/holder.c

# crictl from cri-tools, through the Go module proxy.
bin/crictl:
	GOBIN=$(CURDIR)/bin $(GO) install sigs.k8s.io/cri-tools/cmd/crictl@$(CRI_TOOLS)

# Starts berthd in the foreground with its default config
# (/etc/berth/berth.toml when present, else the built-in defaults).
run: deps build
	bin/berthd

test: deps build bin/crictl test-unit test-e2e

test-unit:
	$(GO) vet -tags "$(SHIM_TAGS)" ./...
	$(GO) test -tags "$(SHIM_TAGS)" -count=1 ./...

# End-to-end tests: the real berthd, a registry on 127.0.0.1 and crictl.
test-e2e: build bin/crictl
	BERTH_E2E=1 BERTHD=$(CURDIR)/bin/berthd CRICTL=$(CURDIR)/bin/crictl \
		$(GO) test -count=1 -timeout 20m -v ./test/e2e/ 2>&1 | tee /tmp/berth-e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)' ; exit $${PIPESTATUS[0]}

# critest, the CRI conformance suite of cri-tools, against a berthd of its
# own: test/cmd/critest-run sets up and removes everything the run needs.
# Binaries are cached in build/critest. See docs/conformance.md.
CRITEST_DIR := build/critest
test-critest: deps build
	BERTH_CRITEST=1 hack/install-deps.sh
	hack/build-critest.sh $(CRI_TOOLS) $(CRITEST_DIR)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(CRITEST_DIR)/webserver ./test/cmd/critest-webserver
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(CRITEST_DIR)/nnp ./test/cmd/critest-nnp
	$(GO) build -o $(CRITEST_DIR)/critest-run ./test/cmd/critest-run
	$(CRITEST_DIR)/critest-run --berthd bin/berthd --critest $(CRITEST_DIR)/critest \
		--busybox $(CRITEST_DIR)/busybox --webserver $(CRITEST_DIR)/webserver --nnp $(CRITEST_DIR)/nnp \
		--out $(CRITEST_DIR)/run

fuzz:
	TMPDIR=/dev/shm $(GO) test -run '^$$' -fuzz FuzzApply -fuzztime 60s -fuzzminimizetime 1s ./images/unpack/

bench: build
	BERTH_BENCH=1 hack/install-deps.sh
	$(GO) run ./test/bench --berthd bin/berthd --out docs/benchmarks.md

# The shipped default config is whatever `berthd config` prints.
contrib/berth.toml: build
	bin/berthd config > $@

install: build
	install -D -m 0755 bin/berthd $(DESTDIR)$(PREFIX)/bin/berthd
	install -D -m 0755 bin/berth-shim $(DESTDIR)$(PREFIX)/bin/berth-shim
	install -D -m 0755 bin/berth-runtime $(DESTDIR)$(PREFIX)/bin/berth-runtime
	install -D -m 0755 bin/berth-pidns-holder $(DESTDIR)$(PREFIX)/bin/berth-pidns-holder
	install -D -m 0644 contrib/berth.service $(DESTDIR)/etc/systemd/system/berth.service
	install -D -m 0644 contrib/crictl.yaml $(DESTDIR)/etc/crictl.yaml
	[ -e $(DESTDIR)/etc/berth/berth.toml ] || install -D -m 0644 contrib/berth.toml $(DESTDIR)/etc/berth/berth.toml
	[ -n "$$(ls $(DESTDIR)/etc/cni/net.d 2>/dev/null)" ] || install -D -m 0644 contrib/cni/10-berth.conflist $(DESTDIR)/etc/cni/net.d/10-berth.conflist

clean:
	rm -rf bin
