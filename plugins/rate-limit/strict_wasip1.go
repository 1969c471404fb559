//go:build wasip1

package main

// strictInit: under gatewayd, a filter whose config is invalid fails to
// load, with the reason in the load error.
const strictInit = true
