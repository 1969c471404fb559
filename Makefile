# The two commands of the README's Quick start are `make run` and `make test`.
.PHONY: run test build plugins examples bench clean

# Build gatewayd, the bundled plugins and the demo services, start the
# services, and serve gateway.toml on :8080 (web) and :8081 (mobile).
# Ctrl-C stops everything.
run:
	@scripts/run-demo.sh

# gofmt, go vet, every test (core packages under -race), and a short run
# of every benchmark.
test:
	@scripts/test.sh

build:
	go build -o bin/ ./cmd/...

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
