# nsbox build, test and benchmark entry points. See README.md.
# GO is a go that can build nsbox: the installed one when it is new enough,
# else the toolchain go.mod names, fetched through the Go module proxy by
# scripts/go-toolchain (with GOTOOLCHAIN from Go 1.21 on; with go mod
# download or curl from an older go, such as Debian 12's 1.19, or none).
ifeq ($(origin GO),undefined)
GO := $(shell scripts/go-toolchain)
ifeq ($(GO),)
$(error scripts/go-toolchain found no go and could not fetch one: see README.md, Install)
endif
# Tests and benchmarks run "go" too: the same one.
export PATH := $(dir $(GO)):$(PATH)
endif
BIN       := bin/nsbox
# make build stamps the version and the commit (nsbox version).
VERSION   ?= $(shell (git describe --tags --dirty 2>/dev/null || echo 0.1.0-dev) | sed 's/^v//')
COMMIT    ?= $(shell git describe --always --dirty --abbrev=12 --exclude='*' 2>/dev/null || echo unknown)
LDFLAGS_V := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GOFLAGS_B := -trimpath -tags=netgo,osusergo,static -ldflags '$(LDFLAGS_V)'
TESTFLAGS ?= -race -count=1 -timeout 15m
BENCHMOD  := -mod=mod

# cgo's cache key does not cover csrc/ (nsclone includes it from there), so
# the sources' hash goes into CGO_CFLAGS: a change in csrc/ rebuilds nsclone.
# The static tag links bin/nsbox statically (cmd/nsbox/static.go); netgo and
# osusergo keep glibc's NSS (getaddrinfo, getpwnam) out of it. Exported so
# that the binaries tests and benchmarks build get the same flags; a plain
# go build or go install links dynamically, and a sanitizer build sets its own.
export GOFLAGS ?= -tags=netgo,osusergo,static
export CGO_CFLAGS ?= -g -O2 -DNSC_SRC_HASH=$(shell cat csrc/*.c csrc/*.h | sha1sum | cut -c1-12)

.PHONY: all build test sanitize bench lint clean install install-cni uninstall man

all: build

build: $(BIN)

# bin/nsbox links against musl (Debian's musl-tools) when musl-gcc is there:
# static glibc probes the CPU's caches with cpuid at every start (each one a
# VM exit on a VM) and maps more pages, about 1 ms of every one-shot command
# here; musl's start does neither. MUSL_CC= (empty) builds with glibc.
# musl ships no kernel headers: MUSL_INC links the system's linux/ and asm/
# ones, which the C in csrc/ includes, into a folder of their own.
MUSL_CC   ?= $(shell command -v musl-gcc 2>/dev/null)
MUSL_INC  := bin/musl-include
KERN_ASM  := $(firstword $(wildcard /usr/include/asm /usr/include/$(shell gcc -print-multiarch 2>/dev/null)/asm))

$(BIN): $(shell find . -name '*.go' -not -path './bench/*' 2>/dev/null) $(wildcard csrc/*.c csrc/*.h) go.mod go.sum
	@mkdir -p bin
ifneq ($(MUSL_CC),)
	@mkdir -p $(MUSL_INC) && ln -sfn /usr/include/linux $(MUSL_INC)/linux && \
	 ln -sfn /usr/include/asm-generic $(MUSL_INC)/asm-generic && ln -sfn $(KERN_ASM) $(MUSL_INC)/asm
	CC=$(MUSL_CC) CGO_CFLAGS="$(CGO_CFLAGS) -isystem $(CURDIR)/$(MUSL_INC)" CGO_ENABLED=1 \
	 $(GO) build $(GOFLAGS_B) -o $(BIN) ./cmd/nsbox
else
	CGO_ENABLED=1 $(GO) build $(GOFLAGS_B) -o $(BIN) ./cmd/nsbox
endif

# make test: every package, with the race detector. Privileged tests need root;
# with NSBOX_REQUIRE_PRIV=1 (CI) a privileged test that would skip fails.
# Benchmarks run once (-benchtime=1x) so that they keep compiling and working.
# bench/ is a module of its own (gonum/plot stays out of the library's
# dependency graph), so it is tested from its folder. BENCHMOD lets the go
# command record there the checksums of a dependency that a library package
# has just gained (bench/go.mod follows the library through a replace).
test: build
	CGO_ENABLED=1 $(GO) test $(TESTFLAGS) ./...
	cd bench && CGO_ENABLED=1 GOFLAGS="$(GOFLAGS) $(BENCHMOD)" $(GO) test $(TESTFLAGS) ./...
	CGO_ENABLED=1 $(GO) test -count=1 -run '^$$' -bench . -benchtime=1x ./...
	cd bench && CGO_ENABLED=1 GOFLAGS="$(GOFLAGS) $(BENCHMOD)" $(GO) test -count=1 -run '^$$' -bench . -benchtime=1x ./...

# make sanitize: the C (the shim, the init's fork fallback, the fast paths of
# run and netns) built once more without -static and with AddressSanitizer
# and UndefinedBehaviorSanitizer (go test -asan; any UB report aborts), then
# the tests that drive it and each parity fuzzer for a bounded time. The
# binaries those tests build get the same flags through GOFLAGS.
SAN_HASH   = $(shell cat csrc/*.c csrc/*.h | sha1sum | cut -c1-12)
SAN_ENV    = CGO_ENABLED=1 GOFLAGS="-tags=netgo,osusergo -asan" \
	CGO_CFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -DNSC_SRC_HASH=$(SAN_HASH)-san" \
	CGO_LDFLAGS="-fsanitize=address,undefined" UBSAN_OPTIONS=print_stacktrace=1
SAN_TESTS  = TestRunFast|TestRunLateNetns|TestRunPublishFast|TestNamedRun|TestRecordFast|TestStatusLines|TestSandboxFastParity|TestSandboxEscapeBothPaths|TestRunViewFast|TestRunNetFast|TestRunPoolFast|TestNetnsFast|TestRunCLI|TestRunClosed|TestRunProc|TestNetnsExecCLI|TestGenerated
SAN_FUZZ   = FuzzRunFastParity FuzzNetnsFastParity
FUZZTIME  ?= 10s
sanitize:
	$(SAN_ENV) $(GO) test -count=1 -timeout 20m ./nsclone
	$(SAN_ENV) $(GO) test -count=1 -timeout 20m -run '$(SAN_TESTS)' ./cmd/nsbox
	for f in $(SAN_FUZZ); do $(SAN_ENV) $(GO) test -count=1 -run '^$$' -fuzz "^$$f$$" -fuzztime=$(FUZZTIME) ./cmd/nsbox || exit 1; done

# make bench BENCHFLAGS='-count 3 -bench Storm -pkgs ./sandbox' passes flags to
# nsbox-bench, which runs in bench/ (package paths are relative to it).
bench: build
	cd bench && CGO_ENABLED=1 GOFLAGS="$(GOFLAGS) $(BENCHMOD)" $(GO) run ./cmd/nsbox-bench $(BENCHFLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt: $$out"; exit 1; fi
	$(GO) vet ./...
	cd bench && GOFLAGS="$(GOFLAGS) $(BENCHMOD)" $(GO) vet ./...
	@if command -v staticcheck >/dev/null 2>&1; then staticcheck ./... && (cd bench && staticcheck ./...); \
	 elif [ -x "$$($(GO) env GOPATH)/bin/staticcheck" ]; then "$$($(GO) env GOPATH)/bin/staticcheck" ./... && (cd bench && "$$($(GO) env GOPATH)/bin/staticcheck" ./...); \
	 else echo "staticcheck not installed (go install honnef.co/go/tools/cmd/staticcheck@latest)"; fi

# make install-cni [DESTDIR=/staging] [CNI_BIN_DIR=/opt/cni/bin]: the nsbox
# binary is also a CNI plugin ("type": "nsbox"); runtimes find it by name in
# their CNI_PATH.
CNI_BIN_DIR ?= /opt/cni/bin
install-cni: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(CNI_BIN_DIR)/nsbox

# make install [PREFIX=/usr/local] [DESTDIR=/staging]: the binary, the man
# page (doc/nsbox.1, made from the help text: make man) and the bash and zsh
# completions (made by the binary itself: nsbox completion bash|zsh).
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/nsbox
	install -m 0644 doc/nsbox.1 $(DESTDIR)$(MANDIR)/man1/nsbox.1
	$(BIN) completion bash > $(DESTDIR)$(BASHCOMPDIR)/nsbox
	$(BIN) completion zsh > $(DESTDIR)$(ZSHCOMPDIR)/_nsbox

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/nsbox $(DESTDIR)$(MANDIR)/man1/nsbox.1 \
	      $(DESTDIR)$(BASHCOMPDIR)/nsbox $(DESTDIR)$(ZSHCOMPDIR)/_nsbox

# make man: regenerate doc/nsbox.1 from the help text (TestManPage fails
# while it is stale).
man:
	NSBOX_UPDATE_MAN=1 CGO_ENABLED=1 $(GO) test -count=1 -run '^TestManPage$$' ./cmd/nsbox

clean:
	rm -rf bin
