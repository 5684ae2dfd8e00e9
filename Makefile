# archsearch: `make run` and `make test` do all the set-up on a fresh machine.
# Extra arguments for the binary: make run ARGS="--rollouts 200 --seed 3"
ARGS ?=
CARGO ?= cargo

.PHONY: all setup build run test bench fmt clean
all: build

setup:  ## libtorch 2.11.0, once per machine (see scripts/setup-libtorch.sh)
	@bash scripts/setup-libtorch.sh

build: setup  ## target/release/archsearch, runnable without environment variables
	$(CARGO) build --release --all-features

run: build  ## the default 5000-rollout half-moon search
	./target/release/archsearch $(ARGS)

# Unit tests share one process, and libtorch's random generator is global to it: tests that seed
# it and compare two runs would race with tests drawing from it, so they run one at a time. The
# end-to-end tests run the binary in processes of their own, two at a time.
test: setup  ## every test, unit and end to end
	$(CARGO) test --release --all-features --lib --bins -- --test-threads=1
	$(CARGO) test --release --all-features --test '*'

bench: build  ## speed figures for BENCHMARKS.md
	./target/release/archsearch bench $(ARGS)

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
