//go:build !wasip1

package main

// strictInit is off natively: the fake host's config is empty at package
// init, and tests build verifiers with newVerifier.
const strictInit = false
