# tlsemit: the README's commands. `make demo` and `make test` work on a fresh machine.
GO ?= go
PKGS := ./...
FUZZTIME ?= 20s

.PHONY: all demo test vet fmt-check bench load fuzz

all: test

demo:
	$(GO) run ./cmd/tlsemit-demo

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

fuzz:
	@set -e; for spec in $$($(GO) run ./internal/cmd/fuzzlist); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done
