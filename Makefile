# lbd — build, test, benchmark and package. Run as root on Debian 12.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME  ?= 5m
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: all build test unit lint fuzz bench bench-sync gobench demo drill soak deb deps clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# deps installs the Debian packages the tests and the demo use (once).
deps:
	@.ci/deps

# test is the whole suite: lint, unit tests, namespace tests (as root) and
# every fuzz target's seed corpus. It fails instead of skipping under CI=true.
test: deps lint
	$(GO) test -count=1 -timeout 20m ./...

# unit runs the tests that need neither root nor network namespaces.
unit:
	$(GO) test -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# fuzz runs every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# bench: lbd beside HAProxy, nginx and no proxy on loopback (lab/bench):
# L4 bulk and connection rate, idle memory, L7 with wrk. RUNS=1 for a quick
# look (default 5); BENCHFLAGS passes more, e.g. '-only l7 -duration 3s -json b.json'.
bench: deps build
	$(BIN)/lbdbench -bin $(BIN) -runs $(if $(filter command line,$(origin RUNS)),$(RUNS),5) $(BENCHFLAGS)
	$(MAKE) bench-sync

# bench-sync: lbd's replication beside HAProxy's peers protocol in the same
# run (sync/): propagation p50/p99, replicated writes/s, 1 M-entry resync of
# a fresh peer, memory per entry, the slowest write after a simultaneous start.
bench-sync: deps
	$(GO) test -run '^$$' -bench 'Propagation$$' -benchtime 2000x ./sync
	$(GO) test -run '^$$' -bench 'ReplicatedWrites$$' -benchtime 200000x ./sync
	$(GO) test -run '^$$' -bench 'Resync1M|MemoryPerEntry|SimultaneousStart' -benchtime 1x ./sync

# gobench: the Go micro-benchmarks (balancers, VRRP codec, HTTP parser, sync).
gobench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# demo: two lbd nodes, two HTTP backends and a client in a namespace lab;
# a demote and a crash, with a timeline of who answered.
demo: deps build
	$(GO) run ./cmd/lbdlab demo -bin $(BIN)

# drill: repeated failovers (switch port down, SIGKILL, demote) at advert
# intervals of 100 ms and 1 s, with keepalived as the anchor in the same run.
RUNS ?= 20
drill: deps build
	$(GO) run ./cmd/lbdlab drill -bin $(BIN) -runs $(RUNS)

# soak: the master's proxy saturated for SOAK (default 5m) at ADVERT; the
# backup must never take over.
SOAK ?= 5m
ADVERT ?= 100ms
soak: deps build
	$(GO) run ./cmd/lbdlab soak -bin $(BIN) -duration $(SOAK) -advert $(ADVERT)

deb: build
	packaging/build-deb.sh $(VERSION) $(BIN)

clean:
	rm -rf $(BIN) dist
