# Routine commands. README.md names the two a newcomer needs: `make serve` and `make test`.
# Each target installs the tools it needs first (scripts/tools.sh skips what is present).

SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help serve release site test lint unit e2e browser fmt

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{ printf "  make %-8s %s\n", $$1, $$2 }'

DEMO_DEVICES ?= 12

serve: release ## Build (release) and serve on http://127.0.0.1:3000 with SQLite under ./data and a demo fleet
	MUDMAP_DEMO_DEVICES=$${MUDMAP_DEMO_DEVICES:-$(DEMO_DEVICES)} ./target/release/mudmap serve

release: ## Build the self-contained release binary target/release/mudmap
	scripts/tools.sh build
	scripts/build-site.sh
	cargo build --release -p server

site: ## Build the front end into target/site (debug servers read it from disk)
	scripts/tools.sh build
	scripts/build-site.sh

test: ## Everything CI checks: format, clippy (server + wasm), tests on SQLite and PostgreSQL, browser tests
	scripts/tools.sh test
	$(MAKE) --no-print-directory lint
	scripts/build-site.sh
	$(MAKE) --no-print-directory unit browser

lint: ## rustfmt and clippy -D warnings for the ssr and the hydrate (wasm32) builds
	cargo fmt --all --check
	cargo clippy -p server -p app --all-targets -- -D warnings
	cargo clippy -p frontend -p app --target wasm32-unknown-unknown -- -D warnings

unit: ## Unit and integration tests (needs PostgreSQL on 127.0.0.1:5432 and a built site)
	cargo nextest run -p server -p app --no-fail-fast

e2e: ## Playwright journeys in Debian's Chromium against the debug server
	cargo build -p server
	$(MAKE) --no-print-directory browser

browser: # the Playwright run alone (`make unit` has already built target/debug/mudmap)
	cd end2end && npx playwright test

fmt: ## Format the code
	cargo fmt --all
