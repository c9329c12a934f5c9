# p2ptun — run `make` for the list of targets.
GO       ?= go
BIN      ?= bin
FUZZTIME ?= 10s
SOAK     ?= 2m
BENCHOUT ?= docs/bench
BENCHFLAGS ?=
BENCHRUNS ?= 3
BENCHWANOUT ?= docs/bench/wan
BENCHWANFLAGS ?=
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.1.0-dev)
LDFLAGS  := -X github.com/p2ptun/p2ptun/cli.Version=$(VERSION)
# make install: DESTDIR (staging, for packagers) and PREFIX as usual.
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
BASHDIR  ?= $(PREFIX)/share/bash-completion/completions
ZSHDIR   ?= $(PREFIX)/share/zsh/site-functions
FISHDIR  ?= $(PREFIX)/share/fish/vendor_completions.d
DIST     ?= dist
TARGETS  ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64 freebsd/amd64 freebsd/arm64

.DEFAULT_GOAL := help
.PHONY: help build demo test test-short soak lint fmt fuzz bench bench-runs bench-wan bench-micro clean man install uninstall cross release docker

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# CGO_ENABLED=0: a static binary that runs on any Linux (glibc or musl,
# distroless); nothing in p2ptun needs cgo. -s -w drops the symbol table
# and DWARF (stack traces and profiles still name functions): a third
# smaller, and 1.7 MiB less resident per idle daemon (measured, issue 7).
build: ## build bin/p2ptun (static, stripped)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $(BIN)/p2ptun .

demo: build ## build, then run a working tunnel between two daemons on loopback
	$(GO) build -o $(BIN)/demo-echo ./contrib/demo/echo && bash contrib/demo/demo.sh $(BIN)

test: ## run every test with the race detector (kubo interop runs when ipfs is on PATH)
	P2PTUN_NO_MDNS=1 $(GO) test -race -count=1 -timeout 12m ./...

test-short: ## run the tests without the race detector
	P2PTUN_NO_MDNS=1 $(GO) test -count=1 ./...

# Without -race: the daemons under load are the plain binary either way, and
# the detector would only slow the load generator (make test runs the same
# code with -race, briefly). "$(SOAK)10m" is SOAK plus 10 minutes: Go adds
# the parts of a duration ("2m10m" is 12m).
soak: ## checked traffic through two real daemons for SOAK (default 2m; SOAK=30m), then back to baseline
	SOAK=$(SOAK) P2PTUN_NO_MDNS=1 $(GO) test -count=1 -v -run '^TestSoak' -timeout $(SOAK)10m .

lint: ## gofmt check, go vet and staticcheck
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo 'run: gofmt -w .'; exit 1; }
	$(GO) vet ./... && $(GO) tool staticcheck ./...

fmt: ## apply gofmt
	gofmt -w .

fuzz: ## run every fuzz target for FUZZTIME each (default 10s; or a count like 3000x)
	@for p in $$($(GO) list ./...); do for f in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz'); do echo "fuzz $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p || exit 1; done; done

bench: build ## loopback (p2ptun, socat, kubo, raw; own load, iperf3, UDP) ~8 min into BENCHOUT, then as root the WAN links ~11 min into BENCHWANOUT (BENCHFLAGS/BENCHWANFLAGS=-quick: a minute each)
	$(GO) run ./bench -p2ptun $(BIN)/p2ptun -out $(BENCHOUT) $(BENCHFLAGS)
	@if [ "$$(id -u)" = 0 ]; then $(GO) run ./bench/wan -p2ptun $(BIN)/p2ptun -out $(BENCHWANOUT) $(BENCHWANFLAGS); \
	else echo "make bench: the WAN table needs root (network namespaces, TUN devices): run sudo make bench-wan"; fi

# The numbers the README quotes: the spread over several whole runs, not
# only over one run's rounds. Each run keeps its own results in runs/N.
bench-runs: build ## make bench BENCHRUNS (3) times: loopback into BENCHOUT/runs/N, then as root the WAN links into BENCHWANOUT/runs/N; each goal over the runs into spread.txt beside them (~1 hour)
	@set -e; files=; for i in $$(seq 1 $(BENCHRUNS)); do \
		$(GO) run ./bench -p2ptun $(BIN)/p2ptun -out $(BENCHOUT)/runs/$$i $(BENCHFLAGS); \
		files="$$files$${files:+,}$(BENCHOUT)/runs/$$i/results.json"; \
	done; $(GO) run ./bench -spread "$$files" -out $(BENCHOUT)
	@set -e; if [ "$$(id -u)" != 0 ]; then echo "make bench-runs: the WAN runs need root: run sudo make bench-runs"; exit 0; fi; \
	files=; for i in $$(seq 1 $(BENCHRUNS)); do \
		$(GO) run ./bench/wan -p2ptun $(BIN)/p2ptun -out $(BENCHWANOUT)/runs/$$i $(BENCHWANFLAGS); \
		files="$$files$${files:+,}$(BENCHWANOUT)/runs/$$i/results.json"; \
	done; $(GO) run ./bench/wan -spread "$$files" -out $(BENCHWANOUT)

# Root only: it makes network namespaces and TUN devices (see README, WAN links).
bench-wan: build ## plain TCP, p2ptun (TCP, QUIC) and kubo across an emulated WAN link, ~10 min, as root: writes BENCHWANOUT (BENCHWANFLAGS=-quick: under a minute)
	$(GO) run ./bench/wan -p2ptun $(BIN)/p2ptun -out $(BENCHWANOUT) $(BENCHWANFLAGS)

bench-micro: ## run the go test -bench micro-benchmarks (streams.Bridge alone)
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean: ## remove build output
	rm -rf $(BIN) $(DIST)

man: build ## write the man page (bin/p2ptun.1) and the shell completions (bin/completion/)
	mkdir -p $(BIN)/completion && $(BIN)/p2ptun man > $(BIN)/p2ptun.1 && $(BIN)/p2ptun completion bash > $(BIN)/completion/p2ptun.bash && $(BIN)/p2ptun completion zsh > $(BIN)/completion/_p2ptun && $(BIN)/p2ptun completion fish > $(BIN)/completion/p2ptun.fish

# install -d then install -m: BSD and macOS install(1) have no -D.
install: man ## install the binary, man page and completions under PREFIX (default /usr/local; DESTDIR for staging)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHDIR) $(DESTDIR)$(ZSHDIR) $(DESTDIR)$(FISHDIR) && install -m 755 $(BIN)/p2ptun $(DESTDIR)$(BINDIR)/p2ptun && install -m 644 $(BIN)/p2ptun.1 $(DESTDIR)$(MANDIR)/man1/p2ptun.1 && install -m 644 $(BIN)/completion/p2ptun.bash $(DESTDIR)$(BASHDIR)/p2ptun && install -m 644 $(BIN)/completion/_p2ptun $(DESTDIR)$(ZSHDIR)/_p2ptun && install -m 644 $(BIN)/completion/p2ptun.fish $(DESTDIR)$(FISHDIR)/p2ptun.fish

uninstall: ## remove what make install installed (same PREFIX and DESTDIR)
	rm -f $(DESTDIR)$(BINDIR)/p2ptun $(DESTDIR)$(MANDIR)/man1/p2ptun.1 $(DESTDIR)$(BASHDIR)/p2ptun $(DESTDIR)$(ZSHDIR)/_p2ptun $(DESTDIR)$(FISHDIR)/p2ptun.fish

cross: ## build every package for each release target (TARGETS), then go vet for windows and darwin
	@for t in $(TARGETS); do echo "build $$t"; CGO_ENABLED=0 GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build ./... || exit 1; done; for os in windows darwin; do echo "vet $$os"; CGO_ENABLED=0 GOOS=$$os $(GO) vet ./... || exit 1; done

release: man ## static archives for TARGETS in DIST (tar.gz; zip for windows) with SHA256SUMS, versioned by git describe
	GO=$(GO) sh contrib/release/release.sh $(DIST) $(BIN) $(VERSION) $(TARGETS)

docker: ## build the container image p2ptun:VERSION (needs a Docker daemon)
	docker build --build-arg VERSION=$(VERSION) -t p2ptun:$(VERSION) .
