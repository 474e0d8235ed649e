# spdu-haproxy: build, test and demo. Every target works on a fresh Debian
# machine: the ones that need HAProxy or dig install them first.
GO        ?= go
BIN       := bin

.PHONY: all build test demo deps vet check-examples clean bench package

all: build

build:
	$(GO) build -o $(BIN)/spdu-haproxy ./cmd/spdu-haproxy
	$(GO) build -o $(BIN)/demo-backend ./cmd/demo-backend

# deps installs the Debian packages the tests, the demo and the packaging
# need (HAProxy 2.6, dig, curl, Knot, the four recursive resolvers, BIND's
# and Knot's DNSSEC tools, lintian, rpm, promtool), only when missing, and
# stops and disables the services they start on install (scripts/deps.sh).
deps:
	@./scripts/deps.sh test

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

# demo installs only what scripts/demo.sh runs (HAProxy, dig, curl).
demo: build
	@./scripts/deps.sh demo
	./scripts/demo.sh

# bench compares DNS answers with Knot, NSD and gdnsd, signed answers (DO bit)
# with Knot signing the same zone, measures idle CPU, the poll cost of
# 1,000/10,000 servers and re-signing at a switch, and writes
# docs/benchmarks.md (about 12 minutes; BENCH_SECONDS=2 for a quick run).
# Installs what it needs.
bench:
	./scripts/bench.sh

# package builds the .deb and .rpm into dist/ with nfpm and go-md2man, run as
# Go tools pinned in tools/go.mod (VERSION=1.2.3 sets the version; by default
# it comes from git). internal/packaging tests them.
package:
	./scripts/package.sh

clean:
	rm -rf $(BIN) dist
