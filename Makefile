# spdu-haproxy: build, test and demo. Every target works on a fresh Debian
# machine: the ones that need HAProxy or dig install them first.
GO        ?= go
BIN       := bin
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build test demo deps vet check-examples clean bench package

all: build

build:
	$(GO) build -o $(BIN)/spdu-haproxy ./cmd/spdu-haproxy
	$(GO) build -o $(BIN)/demo-backend ./cmd/demo-backend

# deps installs the Debian packages the tests and the demo run (HAProxy 2.6,
# dig, curl, Knot DNS for the differential DNS test, unbound for the
# failover test behind a real resolver), only when missing.
deps:
	@missing=""; \
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v dig >/dev/null 2>&1 || missing="$$missing bind9-dnsutils"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	[ -x /usr/sbin/knotd ] || missing="$$missing knot"; \
	[ -x /usr/sbin/unbound ] || missing="$$missing unbound"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@# The package and monitoring tests (internal/packaging): lintian, rpm,
	@# promtool, and what the scratch install runs. Without recommends:
	@# prometheus would bring (and start) a node exporter.
	@missing=""; \
	command -v lintian >/dev/null 2>&1 || missing="$$missing lintian"; \
	command -v rpm >/dev/null 2>&1 || missing="$$missing rpm"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v man >/dev/null 2>&1 || missing="$$missing man-db"; \
	command -v adduser >/dev/null 2>&1 || missing="$$missing adduser"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }

check-examples: deps
	/usr/sbin/haproxy -c -f examples/haproxy.cfg
	$(GO) run ./cmd/spdu-haproxy check -config examples/alpha.toml >/dev/null
	$(GO) run ./cmd/spdu-haproxy check -config examples/beta.toml >/dev/null

# Packages run one at a time (-p 1): several tests measure latency and
# timing on real processes, and a 2-core machine saturated by other
# packages' tests would measure the machine instead.
test: deps vet check-examples
	$(GO) test -race -count=1 -p 1 ./...
	# The race detector allocates, so the zero-allocation checks of the DNS
	# fast path run once more without it.
	$(GO) test -count=1 -run 'Allocs' ./internal/dnsserve

demo: deps build
	./scripts/demo.sh

# bench compares DNS answers with Knot, NSD and gdnsd, measures idle CPU and
# the poll cost of 1,000/10,000 servers, and writes docs/benchmarks.md
# (about 8 minutes; BENCH_SECONDS=2 for a quick run). Installs what it needs.
bench:
	./scripts/bench.sh

# package builds the .deb and .rpm into dist/ with nfpm and go-md2man, run as
# Go tools pinned in tools/go.mod (VERSION=1.2.3 sets the version; by default
# it comes from git). internal/packaging tests them.
package:
	./scripts/package.sh

clean:
	rm -rf $(BIN) dist
