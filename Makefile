# tlsemit: the README's commands. `make demo` and `make test` work on a fresh machine.
GO ?= go
PKGS := ./...
FUZZTIME ?= 20s

.PHONY: all demo fleet fleetsim test vet fmt-check bench load fuzz

all: test

# make demo SERVE=127.0.0.1:8443 keeps serving after the tour and prints
# the status page's URL.
demo:
	$(GO) run ./cmd/tlsemit-demo $(if $(SERVE),-serve $(SERVE))

# Three fleet members, a local redis-server (Debian's package, installed
# when missing) and an OCSP responder; everything stops at the end.
fleet: redis-server
	$(GO) run ./cmd/tlsemit-demo -fleet

# Fleets of 10, 30 and 60 members on one local redis-server, under a
# bounded load (100 handshakes/s), then Redis hung for 5 s: each figure of
# docs/fleet.md's load model beside the one measured, in about two
# minutes. make fleetsim MEMBERS=10 runs one size.
fleetsim: redis-server
	$(GO) run ./internal/cmd/fleetsim $(if $(MEMBERS),-members $(MEMBERS))

.PHONY: redis-server
redis-server:
	@command -v redis-server >/dev/null || { echo "installing redis-server"; \
		export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq redis-server >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq redis-server; }; }

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
# After each target, its executions per second, from go test's own progress
# lines: on average over the run, and at best over one of its 3-second
# intervals (the count pauses while a new interesting input is minimized,
# up to FUZZMINIMIZETIME each). A stalled target shows as a low best.
# 1 s: a new input of FuzzVerify or FuzzServeConn (DER, a ClientHello) rarely
# shrinks further after that, and with 5 s the fuzzers spent most of a run
# minimizing (FuzzServeConn 514 execs/s on average, 2,350 with 1 s).
FUZZMINIMIZETIME ?= 1s
FUZZ_TARGETS = \
	./events:FuzzEmitterOps \
	./ocspfetch:FuzzVerify \
	./ocspfetch:FuzzResponderURL \
	./internal/crl:FuzzParse \
	./tlsserver:FuzzServeConn

# FUZZ_RATE reads go test -fuzz's progress lines ("fuzz: elapsed: 1m3s,
# execs: 120000 (2000/sec), ...") and prints the target's rates.
define FUZZ_RATE
function secs(d,  t, n) {
	t = 0
	while (match(d, /^[0-9.]+[hms]/)) {
		n = substr(d, 1, RLENGTH - 1) + 0
		t += n * (substr(d, RLENGTH, 1) == "h" ? 3600 : substr(d, RLENGTH, 1) == "m" ? 60 : 1)
		d = substr(d, RLENGTH + 1)
	}
	return t
}
/^fuzz: elapsed: .*, execs: [0-9]+ \([0-9]+\/sec\)/ {
	split($$0, f, /[ ,()\/]+/)
	el = secs(f[3]); execs = f[5]
	if (f[6] + 0 > best) best = f[6] + 0
}
END {
	if (execs == "") { printf "fuzz: %s: no executions reported\n", fn; exit }
	printf "fuzz: %s: %d execs in %ds: %d/s on average, %d/s at best\n", fn, execs, el, (el > 0 ? execs / el : 0), best
}
endef
export FUZZ_RATE

fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log $$log.rc' EXIT; \
	for spec in $(FUZZ_TARGETS); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; dir=$${pkg#./}/testdata/fuzz/$$fn; \
		before=$$(ls $$dir 2>/dev/null | sort); \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		{ $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg \
		  && echo 0 > $$log.rc || echo $$? > $$log.rc; } 2>&1 | tee $$log; \
		awk -v fn=$$fn "$$FUZZ_RATE" $$log; \
		if [ "$$(cat $$log.rc)" != 0 ]; then \
			after=$$(ls $$dir 2>/dev/null | sort); \
			if [ "$$before" = "$$after" ] && grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input' $$log; then \
				echo "fuzz: $$fn stopped by the fuzztime deadline race (golang/go#75804), no failing input: not a failure"; \
			else \
				echo "fuzz: $$fn FAILED"; exit 1; \
			fi; \
		fi; \
	done
