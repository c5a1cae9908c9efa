# Shoptrail. `make run` builds everything and starts the appliance;
# `make test` runs every test. See README.md.

GO        ?= go
GOROOT    := $(shell $(GO) env GOROOT)
WASM_EXEC := $(firstword $(wildcard $(GOROOT)/lib/wasm/wasm_exec.js $(GOROOT)/misc/wasm/wasm_exec.js))
DIST      := tracker-wasm/dist
TRACKER_SRC := $(shell find tracker-wasm -name '*.go' -not -path '*/dist/*')

.PHONY: all build wasm run test test-short bench soak fuzz vet clean dist

# The version stamped into the binary: shoptrail -version, the admin
# footer, the admin /healthz, /metrics' shoptrail_build_info.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDVERSION := -X github.com/shoptrail/shoptrail/engine/buildinfo.Version=$(VERSION)
# make dist's targets: static binaries (no cgo), each with the tracker, the
# admin UI and the demo shop embedded.
PLATFORMS := linux/amd64 linux/arm64 darwin/arm64 windows/amd64

all: build

# The browser tracker: Go compiled to WebAssembly, with the wasm_exec.js of
# the same Go version, embedded into the binary from tracker-wasm/dist.
# tracker.wasm.br is brotli at quality 11, made once here (seconds), not
# at every start.
wasm: $(DIST)/tracker.wasm $(DIST)/tracker.wasm.br $(DIST)/wasm_exec.js

$(DIST)/tracker.wasm: $(TRACKER_SRC)
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags='-s -w' -o $@ ./tracker-wasm/cmd/tracker

$(DIST)/tracker.wasm.br: $(DIST)/tracker.wasm
	$(GO) run ./tracker-wasm/cmd/compress $<

$(DIST)/wasm_exec.js: $(WASM_EXEC)
	cp $< $@

build: wasm
	$(GO) build -trimpath -ldflags '$(LDVERSION)' -o shoptrail .

# Release binaries and their SHA-256 sums in dist/ (not part of make test:
# it compiles four times).
dist: wasm
	rm -rf dist && mkdir -p dist
	for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		echo "dist/shoptrail-$(VERSION)-$$os-$$arch$$ext"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w $(LDVERSION)' \
			-o dist/shoptrail-$(VERSION)-$$os-$$arch$$ext . || exit 1; \
	done
	cd dist && if command -v sha256sum >/dev/null; then sha256sum shoptrail-*; else shasum -a 256 shoptrail-*; fi > SHA256SUMS
	cat dist/SHA256SUMS

# Starts on the built-in defaults: data in ./data, public listener on
# 127.0.0.1:8080, admin on 127.0.0.1:8081.
run: build
	./shoptrail

vet: wasm
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./tracker-wasm/...
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || { echo "gofmt: the files above need formatting"; exit 1; }

test: vet
	$(GO) test -race -count=1 ./...

test-short: wasm
	$(GO) test -short -count=1 ./...

# Ingestion against a bare net/http handler in the same run, and more.
bench: wasm
	$(GO) test -run='^$$' -bench=. -benchtime=1x -timeout=2h ./engine/app/ ./engine/demo/ ./engine/catalog/ ./engine/attribution/ ./engine/mail/ ./smtpfallback/ ./engine/campaign/ ./engine/segment/ ./engine/mailcampaign/ ./engine/automation/
	$(GO) test -run='^$$' -bench=LongRunMemory -benchtime=1x -timeout=2h .

# 20 kill -9 cycles under mixed load with a disk-full episode (on a tmpfs,
# as root): acknowledged / found / lost / duplicated per cycle.
soak: wasm
	SOAK=1 $(GO) test -run '^TestSoak$$' -count=1 -v -timeout 30m .

# Each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzNormalise -fuzztime=$(FUZZTIME) ./engine/track/
	$(GO) test -run='^$$' -fuzz=FuzzFastDecode -fuzztime=$(FUZZTIME) ./engine/track/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeSegment -fuzztime=$(FUZZTIME) ./engine/track/
	$(GO) test -run='^$$' -fuzz=FuzzFastSegment -fuzztime=$(FUZZTIME) ./engine/track/
	$(GO) test -run='^$$' -fuzz=FuzzAppendJSON -fuzztime=$(FUZZTIME) ./engine/model/
	$(GO) test -run='^$$' -fuzz=FuzzRead -fuzztime=$(FUZZTIME) ./engine/feed/
	$(GO) test -run='^$$' -fuzz=FuzzWebURL -fuzztime=$(FUZZTIME) ./engine/feed/
	$(GO) test -run='^$$' -fuzz=FuzzText -fuzztime=$(FUZZTIME) ./engine/redact/
	$(GO) test -run='^$$' -fuzz=FuzzVerify -fuzztime=$(FUZZTIME) ./engine/mail/
	$(GO) test -run='^$$' -fuzz=FuzzSanitise -fuzztime=$(FUZZTIME) ./engine/campaign/
	$(GO) test -run='^$$' -fuzz=FuzzShownAppendJSON -fuzztime=$(FUZZTIME) ./engine/campaign/
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./engine/segment/

clean:
	rm -rf shoptrail dist $(DIST)/tracker.wasm $(DIST)/tracker.wasm.br $(DIST)/wasm_exec.js
