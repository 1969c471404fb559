# The two commands of the README's Quick start are `make run` and `make test`.
.PHONY: run test build dist plugins examples bench clean

# Build gatewayd, the bundled plugins and the demo services, start the
# services, and serve gateway.toml on :8080 (web) and :8081 (mobile).
# Ctrl-C stops everything.
run:
	@scripts/run-demo.sh

# gofmt, go vet, every test (core packages under -race), and a short run
# of every benchmark.
test:
	@scripts/test.sh

# The version and commit gatewayd reports (gatewayd version, its first
# log line), from git when there is a checkout.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

build:
	go build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

# Release archives: gatewayd for linux and darwin on amd64 and arm64, each
# with the bundled plugins, the demo gateway.toml, README and LICENSE, and
# a SHA256SUMS file, in build/dist.
dist:
	@VERSION="$(VERSION)" LDFLAGS="$(LDFLAGS)" scripts/dist.sh

# The bundled plugins, plugins/NAME/ -> plugins/NAME.wasm.
plugins:
	@scripts/build-plugins.sh

# The SDK examples, one per language, -> build/examples/NAME.wasm (a
# language whose toolchain is missing is skipped, with its install command).
examples:
	@scripts/build-examples.sh

# gatewayd versus nginx on the same upstream, then what each bundled
# filter costs against plain Lintel (needs nginx and wrk).
bench:
	@scripts/bench-vs-nginx.sh
	@scripts/bench-filters.sh

clean:
	rm -rf bin build plugins/*.wasm
