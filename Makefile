# Cairn's build and test entry points. `make test` is the one command CI runs
# (.ci/run) on a fresh clone: it installs what it needs (.venv/ from
# requirements-test.txt, e2e/node_modules, Debian's chromium), starts a
# throwaway PostgreSQL and moto server, and stops them again, also when a
# step fails. See scripts/testenv.sh.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test
# The steps of `test` share ports, the venv and the tree: never run them in parallel.
.NOTPARALLEL:

GO ?= go
PKGS ?= ./...
TEST_FLAGS ?= -count=1 -timeout 15m
TESTENV := scripts/testenv.sh

.PHONY: bench-smoke test generate generate-check web web-check vet fmt-check venv clients lint-api lint-templates image schemathesis \
	schemathesis-postgres schemathesis-both go-test run bench

## test: every check CI runs, in this order, stopping at the first failure.
# Each step but the last says how long it took, so that a slow suite shows
# where its time goes. go test runs last so that its summary closes the
# output, which is what CI reads.
TEST_STEPS := generate-check web-check vet lint-api lint-templates image schemathesis-both bench-smoke
test:
	@for step in $(TEST_STEPS); do \
		start=$$SECONDS; \
		$(MAKE) --no-print-directory $$step; \
		echo "make test: $$step took $$((SECONDS - start)) s"; \
	done
	@$(MAKE) --no-print-directory go-test

## generate: regenerate code (oapi-codegen server and client, ...).
generate:
	$(GO) generate $(PKGS)

## generate-check: fail if regenerating changes the tree (generated code is committed).
generate-check:
	scripts/generate-check.sh

## web: build the admin portal (web/dist, embedded in the server) from its sources.
web:
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build

## web-check: rebuild the portal and fail if the committed build differs.
web-check:
	scripts/web-check.sh

## vet: go vet plus a gofmt check.
vet: fmt-check
	$(GO) vet $(PKGS)

fmt-check:
	scripts/gofmt-check.sh

## venv: create or refresh .venv/ (moto, cfn-lint, schemathesis).
venv:
	$(TESTENV) venv

## clients: install the tracking clients and Chromium for the client and browser
## tests (e2e/node_modules by npm ci, Debian's chromium; cached, see testenv.sh).
clients:
	$(TESTENV) clients

## lint-api: lint api/openapi.yaml with Redocly (recommended) and Spectral
## (spectral:oas), pinned in tools/apilint; any error or warning fails.
lint-api:
	scripts/lint-api.sh

## lint-templates: cfn-lint every CloudFormation template under templates/
## (tenant stacks) and deploy/ (the control plane itself).
lint-templates: venv
	@shopt -s nullglob; \
	templates=(templates/*.yaml templates/*.yml templates/*.json deploy/*.yaml deploy/*.yml deploy/*.json); \
	if (( $${#templates[@]} == 0 )); then \
		echo "lint-templates: no templates under templates/ or deploy/, skipping"; \
	else \
		echo "lint-templates: cfn-lint $${templates[*]}"; \
		.venv/bin/cfn-lint -- "$${templates[@]}"; \
	fi

## image: build the container image (Containerfile, from scratch) offline with
## buildah when it is installed; otherwise say so: deploy/image_test.go checks
## the build steps either way (scripts/image.sh).
image:
	scripts/image.sh build

## schemathesis: fuzz the built server against api/openapi.yaml (scripts/schemathesis.sh).
# Under testenv so that the server's AWS SDK, if it makes any call, reaches moto.
schemathesis: venv
	$(TESTENV) run scripts/schemathesis.sh

## schemathesis-postgres: the same with the server on the throwaway PostgreSQL,
## with fewer cases per operation (25: the suite's time; SCHEMATHESIS_MAX_EXAMPLES
## sets another number).
SCHEMATHESIS_PG_EXAMPLES ?= 25
schemathesis-postgres: venv
	$(TESTENV) run bash -c 'SCHEMATHESIS_DATABASE_URL="$$CAIRN_TEST_DATABASE_URL" SCHEMATHESIS_MAX_EXAMPLES="$${SCHEMATHESIS_MAX_EXAMPLES:-$(SCHEMATHESIS_PG_EXAMPLES)}" scripts/schemathesis.sh'

## schemathesis-both: schemathesis and schemathesis-postgres at once, their
## outputs one after the other (scripts/schemathesis-both.sh): what `test` runs.
schemathesis-both: venv
	$(TESTENV) run env SCHEMATHESIS_PG_EXAMPLES=$(SCHEMATHESIS_PG_EXAMPLES) scripts/schemathesis-both.sh

## bench-smoke: every benchmark once (-benchtime=1x, no test, no figure
## asserted), against the same throwaway services, so that none rots;
## -short makes the largest ones small (their doc comments say how).
bench-smoke: venv clients
	$(TESTENV) run $(GO) test -count=1 -short -run '^$$' -bench . -benchtime 1x $(PKGS)

## go-test: go test, with the race detector, against a throwaway PostgreSQL
## and moto (RACE= to run without it: about half the time on 2 cores).
# SQLite itself (modernc.org/sqlite/lib, translated from C) is built without
# the race instrumentation: its code is not Cairn's, the driver serialises
# each connection, and instrumented it costs half the CPU of every test on
# the embedded store. Only that package: it defines nothing but its own
# functions, whereas modernc.org/libc carries copies of generic standard
# library code that the linker may pick for the whole binary, uninstrumented,
# which hides synchronisation and reports false races.
RACE ?= -race -gcflags=modernc.org/sqlite/lib=-race=false
go-test: venv clients
	$(TESTENV) run $(GO) test $(RACE) $(TEST_FLAGS) $(PKGS)

## run: run the server with its defaults.
run:
	$(GO) run ./cmd/server

## bench: benchmarks only, with Postgres and moto up for the adapters' benchmarks.
bench: venv
	$(TESTENV) run $(GO) test -run '^$$' -bench . -benchmem $(PKGS)
