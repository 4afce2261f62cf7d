# keygate — build, test and benchmark.
GO        ?= go
PKGS      := ./...
FUZZTIME  ?= 10s

.PHONY: all build test test-deps vet check fuzz-short bench clean

all: build

build:
	$(GO) build -o bin/keygate ./cmd/keygate

test-deps:
	@./scripts/test-deps.sh

vet:
	$(GO) vet $(PKGS)

## test: install test dependencies if missing, then vet and all tests with -race.
test: test-deps vet
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

## check: test plus staticcheck.
check: test
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

## fuzz-short: every fuzz target for $(FUZZTIME) each.
fuzz-short:
	@./scripts/fuzz.sh $(FUZZTIME)

## bench: the gateway benchmark (keygate vs a bare httputil.ReverseProxy, same run, ratios),
## then the micro-benchmarks of the hot paths and the token endpoint.
bench:
	$(GO) test -run='^$$' -bench='^BenchmarkGateway$$' -benchtime=1x -count=1 -timeout 10m ./internal/app/
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 -timeout 20m ./internal/token/ ./internal/dpop/ ./internal/proxy/ ./internal/oauth/ ./internal/ratelimit/ ./internal/audit/

clean:
	rm -rf bin
