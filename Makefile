# dnstrail: the two commands a fresh machine needs are `make demo` and
# `make test`. Everything else is for developers.

CARGO ?= cargo

.PHONY: demo test lint fmt build release clean

## Build and run the whole story: every server, three visits, a summary.
demo:
	$(CARGO) run --release --quiet -- demo

## Every test: unit, integration (real servers on loopback) and the CLI.
test:
	$(CARGO) test --all-targets
	$(CARGO) test --doc

## Formatting and clippy, as CI checks them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build

release:
	$(CARGO) build --release

clean:
	$(CARGO) clean
