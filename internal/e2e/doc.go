// Package e2e is Lintel's end-to-end suite: real gateways on loopback
// sockets (internal/gatewaytest) running real plugins built from source
// (the bundled plugins, the SDK examples in every language, the test
// guests of testdata/wasm), in front of real upstreams and a real Redis.
// It tests what a plugin author and an operator see: the ABI through
// gatewayd, the SDKs, the bundled plugins, requests held across phases.
// The gateway's own behaviour is tested in core/gateway, the ABI's host
// functions one by one in core/wasm.
package e2e
