# Switchboard's tasks. `make test` is the one command that runs every test.
SHELL := /bin/bash
BIN := $(CURDIR)/.build/switchboard

.PHONY: test test-go test-js build deps-js web run

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
