# Switchboard's tasks. `make test` is the one command that runs every test.
SHELL := /bin/bash
BIN := $(CURDIR)/.build/switchboard
# scripts/setup.sh installs pnpm here when the pinned version is not on PATH already.
export PATH := $(CURDIR)/.build/tools/bin:$(PATH)

.PHONY: test test-go test-js setup build deps-js web run bench bench-quick

## test: installs what is missing (setup), then every Go test under -race, then the socket.io-client tests against a fresh build
test: setup test-go test-js

## setup: pnpm at package.json's version, the JS packages from the lockfile, make, gcc, Chromium, redis-server, Redis on :6379 (quick when all is there; apt-get needs root or sudo)
setup:
	@bash scripts/setup.sh

test-go: setup
	go test -race -count=1 ./...

build:
	go build -o $(BIN) .

# deps-js: the JS packages from the lockfile; the setup installs them.
deps-js: setup

## web: the demo page (client-js/web) built into client-js/dist, which the server serves at /demo/
web: deps-js
	pnpm --filter client-js build

test-js: build deps-js web
	SWITCHBOARD_BIN=$(BIN) pnpm --filter client-js test

run:
	go run .

## bench: Switchboard vs Node socket.io side by side (default sizes, 3 repetitions, ~10 min) → bench/RESULTS.md
bench: deps-js
	go run ./bench/cmd/benchrun

## bench-quick: small sizes, one repetition (~2 min) → .build/bench/RESULTS-quick.md
bench-quick: deps-js
	go run ./bench/cmd/benchrun -quick -out .build/bench/RESULTS-quick.md
