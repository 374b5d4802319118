# dnstrail: the two commands a fresh machine needs are `make demo` and
# `make test`. Everything else is for developers.

CARGO ?= cargo

.PHONY: demo test lint fmt build release clean interop multihost bench fuzz

## Build and run the whole story: every server, three visits, a summary.
## The build shows its progress (the first one takes a few minutes).
demo:
	$(CARGO) run --release -- demo

## Every test: unit, integration (real servers on loopback) and the CLI.
test:
	$(CARGO) test --all-targets
	$(CARGO) test --doc

## Formatting and clippy, as CI checks them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## dnstrail beside NSD, Knot DNS and Unbound, compared message by message,
## and dig, kdig, curl and Chromium against it (tests/interop/; as root,
## installs what it lacks).
interop:
	CARGO=$(CARGO) bash scripts/interop.sh

## Every role on a host of its own: network namespaces on one bridge,
## port 53 everywhere, Unbound beside our resolver (as root, with iproute2).
multihost:
	$(CARGO) test --test integration multihost:: -- --ignored --test-threads=1

## Side by side with Unbound, NSD, Knot DNS and nginx; writes BENCHMARKS.md.
bench:
	bash scripts/bench.sh

## Fuzz each untrusted-input path for FUZZ_SECONDS (default 60) each.
fuzz:
	bash scripts/fuzz.sh

fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build

release:
	$(CARGO) build --release

clean:
	$(CARGO) clean
