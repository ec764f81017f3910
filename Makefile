# Switchboard's tasks. `make test` is the one command that runs every test.
SHELL := /bin/bash
BIN := $(CURDIR)/.build/switchboard

.PHONY: test test-go test-js build deps-js web run bench bench-quick

## test: every Go test under -race, then the socket.io-client tests against a fresh build
test: test-go test-js

test-go:
	go test -race -count=1 ./...

build:
	go build -o $(BIN) .

deps-js:
	pnpm install --frozen-lockfile

## web: the demo page (client-js/web) built into client-js/dist, which the server serves at /
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
