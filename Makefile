# tlsemit: the README's commands. `make demo` and `make test` work on a fresh machine.
GO ?= go
PKGS := ./...
FUZZTIME ?= 20s

.PHONY: all demo fleet test vet fmt-check bench load fuzz

all: test

# make demo SERVE=127.0.0.1:8443 keeps serving after the tour and prints
# the status page's URL.
demo:
	$(GO) run ./cmd/tlsemit-demo $(if $(SERVE),-serve $(SERVE))

# Three fleet members, a local redis-server (Debian's package, installed
# when missing) and an OCSP responder; everything stops at the end.
fleet:
	@command -v redis-server >/dev/null || { echo "make fleet: installing redis-server"; \
		export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq redis-server >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq redis-server; }; }
	$(GO) run ./cmd/tlsemit-demo -fleet

test: fmt-check vet
	$(GO) test -race -count=1 $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needs to run on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

bench:
	$(GO) run ./internal/cmd/benchtable

load:
	TLSEMIT_LOAD=1 $(GO) test -run 'TestLoad' -count=1 -timeout 30m -v ./internal/loadtest/

# Each target fuzzes for FUZZTIME. Go 1.26's coordinator can end a run at
# the deadline with "context deadline exceeded" and no failing input
# (golang/go#75804): that alone is reported, not failed. A failure that
# writes a reproducer to testdata/fuzz fails the target.
FUZZMINIMIZETIME ?= 5s
FUZZ_TARGETS = \
	./events:FuzzEmitterOps \
	./ocspfetch:FuzzVerify \
	./ocspfetch:FuzzResponderURL \
	./internal/crl:FuzzParse \
	./tlsserver:FuzzServeConn

fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log $$log.rc' EXIT; \
	for spec in $(FUZZ_TARGETS); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; dir=$${pkg#./}/testdata/fuzz/$$fn; \
		before=$$(ls $$dir 2>/dev/null | sort); \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		{ $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg \
		  && echo 0 > $$log.rc || echo $$? > $$log.rc; } 2>&1 | tee $$log; \
		if [ "$$(cat $$log.rc)" != 0 ]; then \
			after=$$(ls $$dir 2>/dev/null | sort); \
			if [ "$$before" = "$$after" ] && grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input' $$log; then \
				echo "fuzz: $$fn stopped by the fuzztime deadline race (golang/go#75804), no failing input: not a failure"; \
			else \
				echo "fuzz: $$fn FAILED"; exit 1; \
			fi; \
		fi; \
	done
