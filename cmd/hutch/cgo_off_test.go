//go:build !cgo

package main

// cgoBuild: this test binary was built without cgo, as the Makefile
// builds hutch.
const cgoBuild = false
