# The two commands that matter: `make run` (the whole CDP locally) and `make test`.
# Needs only Go, Node/npm and Java; `make tools` installs the pinned emulators and CDK CLI
# from tools/package-lock.json into tools/node_modules; `make browser` installs Chromium (apt).

SHELL      := /bin/bash
GO         ?= go
FUNCTIONS  := $(notdir $(wildcard functions/*))
LOCAL      := $(GO) run ./cmd/local
FUZZTIME   ?= 100000x
CDK        := tools/node_modules/.bin/cdk
CDK_FLAGS  ?=
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1

.PHONY: all tools browser run test test-go unit chaos fuzz bench bench-micro build clean fmt vet synth diff deploy test-infra test-import-100k screenshots

all: build

tools: tools/node_modules/.installed
tools/node_modules/.installed: tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## browser: headless Chromium (Debian package) for the browser CORS test; skipped without it, except in CI
browser:
	@command -v chromium >/dev/null 2>&1 || { s=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$s apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$s apt-get install -y -qq chromium >/dev/null; }

## run: DynamoDB Local + kinesis-mock + every function at http://127.0.0.1:8080 (Ctrl-C stops all)
run: tools
	$(GO) build -o build/cdp-local ./cmd/local
	./build/cdp-local

## test: vet, unit and integration tests against the emulators (started once, reused), fuzz smoke
test: tools browser vet
	$(LOCAL) emulators -- $(MAKE) --no-print-directory test-go
	$(MAKE) --no-print-directory fuzz

# The runtime module with the race detector; the CDK app (infra/, its own Go module) without it:
# it only synthesizes CloudFormation, and race-compiling jsii would cost minutes for nothing.
test-go:
	$(GO) test -race -count=1 -timeout 20m -tags integration ./...
	cd infra && $(GO) test -count=1 -timeout 20m ./...

## chaos: the fault suite alone (runner SIGKILL, emulator restart, partial PutRecords failures);
## `make test` runs it too. It starts its own emulators on free ports.
chaos: tools
	$(GO) test -race -count=1 -v -timeout 10m -tags integration ./internal/chaos

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./internal/tracking
	$(GO) test -run='^$$' -fuzz=FuzzPath -fuzztime=$(FUZZTIME) ./internal/profile
	$(GO) test -run='^$$' -fuzz=FuzzCursor -fuzztime=$(FUZZTIME) ./internal/profile
	$(GO) test -run='^$$' -fuzz=FuzzNewRequest -fuzztime=$(FUZZTIME) ./internal/privacy
	$(GO) test -run='^$$' -fuzz=FuzzFromContext -fuzztime=$(FUZZTIME) ./internal/consent
	$(GO) test -run='^$$' -fuzz=FuzzCSVRowMapping -fuzztime=$(FUZZTIME) ./internal/importer

## test-import-100k: the issue's 100,000-row `cdp import` through the local stack (make test runs 3,000)
test-import-100k: tools
	CDP_IMPORT_ROWS=100000 $(GO) test -count=1 -v -timeout 150m -tags integration -run TestImportCSVEndToEnd ./internal/local

## screenshots: the console's browser tests, saving each page's screenshot into docs/console (the README's pictures)
screenshots: tools browser
	CDP_SCREENSHOTS=$(CURDIR)/docs/console $(GO) test -count=1 -tags integration -run 'TestConsole' ./internal/local

## bench: end-to-end benchmark (seeded workload through every stage) → bench-results/report.{json,md}
bench: tools
	$(GO) run ./cmd/bench

## bench-micro: Go micro-benchmarks of each handler's hot path (against the emulators)
bench-micro: tools
	$(LOCAL) emulators -- $(GO) test -run='^$$' -bench=. -benchmem -tags integration ./internal/...

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "not gofmt-formatted: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	cd infra && $(GO) vet ./...

## build: the Lambda bootstrap binaries (linux/arm64) under build/<function>/bootstrap
build: $(FUNCTIONS:%=build/%/bootstrap)
build/%/bootstrap: FORCE
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -ldflags "-s -w" -trimpath -o $@ ./functions/$*

## synth: CloudFormation template and cdk-nag report into cdk.out/ (no AWS credentials needed)
synth: tools build
	$(CDK) synth --quiet $(CDK_FLAGS)

## diff: what a deploy would change (needs AWS credentials)
diff: tools build
	$(CDK) diff $(CDK_FLAGS)

## deploy: build the Lambda binaries and deploy cdp-<stage> (needs credentials; `cdk bootstrap` once per account/region)
deploy: tools build
	$(CDK) deploy --require-approval broadening $(CDK_FLAGS)

## unit: the tests that need no emulator (files without the `integration` build tag)
unit:
	$(GO) test -count=1 ./...

## test-infra: CDK assertions and cdk-nag checks for infra/ only
test-infra:
	cd infra && $(GO) test -count=1 ./...

clean:
	rm -rf build cdk.out bench-results .emulators

FORCE:
