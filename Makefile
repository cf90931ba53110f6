# ytempire — build, run, test and benchmark. Every target installs what it needs first.
SWIFT ?= swift
PYTHON ?= python3
APT_PACKAGES := pkg-config libyaml-dev libgit2-dev libcurl4-openssl-dev libsqlite3-dev tzdata git time openssl openssh-client openssh-server gnupg nghttp2-server postgresql prometheus chromium cmark-gfm
BENCH_APT_PACKAGES := nginx-light

.PHONY: deps build run test lint format schemas bench bench-git bench-http bench-plan bench-state bench-all clean chaos install fuzz fuzz-build fuzz-smoke

# System packages (Debian) and the Python packages the schema checks use.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@$(PYTHON) -c 'import jsonschema, referencing, yaml' 2>/dev/null || \
	  $(PYTHON) -m pip install -q 'jsonschema>=4.18' pyyaml || \
	  { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get install -y -qq python3-jsonschema python3-yaml python3-referencing; }

build: deps
	$(SWIFT) build --product ytempire

# The main job on the embedded default: the sandbox (emulators seeded from examples/empire),
# a local git repository made from examples/empire, the runtime config store on SQLite; then
# plan, apply, plan again (no changes) and status (scripts/demo.sh).
DEMO_DIR ?= .ytempire-demo
run: build
	@bash scripts/demo.sh $(DEMO_DIR)

# Installs the binary, its man page (generated from the argument parser), shell completions,
# the JSON Schemas (`ytempire init` points editors at them), the docs and the systemd unit.
PREFIX ?= /usr/local
DESTDIR ?=
install: deps
	$(SWIFT) build -c release --product ytempire
	mkdir -p .build/man
	$(SWIFT) package --allow-writing-to-directory .build/man generate-manual --output-directory .build/man
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/ytempire/schemas \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d $(DESTDIR)$(PREFIX)/share/doc/ytempire/drivers \
	  $(DESTDIR)$(PREFIX)/share/doc/ytempire/examples
	install -m 0755 .build/release/ytempire $(DESTDIR)$(PREFIX)/bin/ytempire
	install -m 0644 .build/man/ytempire.1 $(DESTDIR)$(PREFIX)/share/man/man1/ytempire.1
	install -m 0644 schemas/*.json $(DESTDIR)$(PREFIX)/share/ytempire/schemas/
	.build/release/ytempire --generate-completion-script bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/ytempire
	.build/release/ytempire --generate-completion-script zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_ytempire
	.build/release/ytempire --generate-completion-script fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/ytempire.fish
	install -m 0644 docs/*.md $(DESTDIR)$(PREFIX)/share/doc/ytempire/
	install -m 0644 docs/drivers/*.md $(DESTDIR)$(PREFIX)/share/doc/ytempire/drivers/
	install -m 0644 examples/ytempire.yaml examples/systemd/ytempire.service $(DESTDIR)$(PREFIX)/share/doc/ytempire/examples/
	@echo "installed under $(DESTDIR)$(PREFIX); the systemd unit is in share/doc/ytempire/examples/ (see its header)"

schemas: deps
	$(PYTHON) scripts/check_schemas.py examples/empire

# Formatting: .swift-format (line length 140, swift-format's defaults otherwise); `make format` applies it.
lint:
	$(SWIFT) format lint --strict --recursive --parallel Sources Tests

format:
	$(SWIFT) format format --in-place --recursive --parallel Sources Tests

test: deps schemas lint
	$(SWIFT) build --product ytempire
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(MAKE) fuzz-smoke

# libFuzzer targets (Fuzz/Package.swift) over the YAML loader, the manifest decoder with the
# cross-resource rules, the reconciler-config loader, the plan-file reader, the webhook gate,
# the sandbox's request handlers and the drivers' parsing of HTTP answers, built with ASan. Seeds: the bad-input fixtures and the examples,
# Fuzz/seeds/<target>/ for the last four; Fuzz/crashes/<target>/ holds every crash found (replayed first).
FUZZ_TARGETS ?= yaml manifests config planfile webhook sandbox answers
FUZZ_SECONDS ?= 600
FUZZ_RUNS ?= 3000
# The seed directories of target $$t, as shell (the loops below run in the shell, so a make
# function of $$t would see the literal text "$t").
# fuzz-answers runs its drivers on the cooperative pool, which releases an input's objects just
# after the input returns: LeakSanitizer, checked at that moment, would report them, so it runs
# with -detect_leaks=0 (ASan's other checks stay on).
fuzz_seeds_sh = flags=""; case $$t in \
	  config) seeds="examples";; \
	  answers) seeds="Fuzz/seeds/$$t"; flags="-detect_leaks=0";; \
	  planfile|webhook|sandbox) seeds="Fuzz/seeds/$$t";; \
	  *) seeds="Tests/EmpireModelTests/Fixtures/bad Tests/EmpireModelTests/Fixtures/conformance examples/empire";; \
	esac
fuzz-build: deps
	$(SWIFT) build --package-path Fuzz -c release --build-path .build/fuzz \
	  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld

# Each target for FUZZ_SECONDS (default 10 minutes: millions of executions for the loaders).
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p .build/fuzz-corpus/$$t .build/fuzz-artifacts; \
	  echo "== fuzz-$$t for $(FUZZ_SECONDS) s"; $(fuzz_seeds_sh); \
	  .build/fuzz/release/fuzz-$$t .build/fuzz-corpus/$$t $$seeds Fuzz/crashes/$$t $$flags \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
	    -artifact_prefix=.build/fuzz-artifacts/$$t- 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|Done)" || exit 1; \
	done

# What make test runs: the crash fixtures replayed, then FUZZ_RUNS inputs per target.
fuzz-smoke: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  crashes=$$(find Fuzz/crashes/$$t -type f ! -name README.md 2>/dev/null); \
	  if [ -n "$$crashes" ]; then .build/fuzz/release/fuzz-$$t $$crashes >/dev/null 2>&1 || { echo "fuzz-$$t: a crash fixture crashes again"; exit 1; }; fi; \
	  mkdir -p .build/fuzz-smoke/$$t; $(fuzz_seeds_sh); \
	  .build/fuzz/release/fuzz-$$t .build/fuzz-smoke/$$t $$seeds $$flags -runs=$(FUZZ_RUNS) -timeout=10 -rss_limit_mb=4096 \
	    -artifact_prefix=.build/fuzz-artifacts-smoke-$$t- >.build/fuzz-smoke/$$t.log 2>&1 \
	    || { tail -30 .build/fuzz-smoke/$$t.log; echo "fuzz-$$t: crashed (see the artifact above)"; exit 1; }; \
	  echo "fuzz-$$t: $$(grep -E '^Done' .build/fuzz-smoke/$$t.log)"; \
	done

# validate on 10,000 channels vs libyaml's parse floor and Python jsonschema (bench/README.md)
bench: deps
	bash bench/run.sh

# HTTP keep-alive req/s at 1/8/64 tasks vs curl --parallel, against the NIO test server and nginx
bench-http: deps
	@dpkg-query -W -f='$${Status}' $(BENCH_APT_PACKAGES) 2>/dev/null | grep -q "install ok installed" || \
	  { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(BENCH_APT_PACKAGES) >/dev/null; }
	bash bench/http/run.sh

# reading every manifest of the 10,000-channel repository at a commit vs git ls-tree + cat-file;
# fetching one new commit into a warm mirror vs git fetch
bench-git: deps
	bash bench/git/run.sh

# plan/apply against the sandbox: no-change plan of 1,000 channels with 20 ms per call vs its
# lower bound; incremental vs full plan of 10,000 channels; their peak RSS; apply at 20 req/s
# (bench/README.md). CONFIG=release measures .build/release; BENCH_PLAN_CHANNELS=200 for a smoke run.
bench-plan: deps
	CONFIG="$(CONFIG)" bash bench/plan/run.sh $(BENCH_PLAN_ARGS)

# apply --force of 1,000 channels with the state in PostgreSQL vs SQLite (issue 19: >= 0.8x).
# CONFIG=release measures .build/release; BENCH_STATE_CHANNELS=200 for a smoke run.
bench-state: deps
	CONFIG="$(CONFIG)" bash bench/state/run.sh

bench-all: bench bench-git bench-http bench-plan bench-state

clean:
	rm -rf .build bench/out

# kill -9 at 200 points of `ytempire apply` against the sandbox; every restart must converge
# without a duplicate playlist or an open journal entry (Tests/EndToEndTests/FaultTests.swift).
# Then 20 kill -9s of the leader of two `serve` instances on one PostgreSQL state, each at a
# random point of an apply: one leader, each commit applied once, no duplicate playlist
# (Tests/EndToEndTests/HighAvailabilityTests.swift; make test runs 2).
chaos: deps
	$(SWIFT) build --product ytempire
	$(SWIFT) build --build-tests
	YTEMPIRE_CHAOS_KILLS=200 $(SWIFT) test --skip-build --filter EndToEndTests.ChaosTests
	YTEMPIRE_HA_KILLS=20 $(SWIFT) test --skip-build --filter EndToEndTests.HighAvailabilityTests
