//go:build cgo

package main

// cgoBuild: this test binary was built with cgo (make test-cgo).
const cgoBuild = true
