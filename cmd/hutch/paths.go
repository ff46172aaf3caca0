package main

import (
	"os"
	"path/filepath"
	"strings"
)

// absPath makes a flag's path absolute against the working directory,
// keeping a leading ~ for the plan to expand against the real home.
func absPath(p string) (string, error) {
	if p == "" {
		return "", usagef("empty path")
	}
	if p == "~" || strings.HasPrefix(p, "~/") || filepath.IsAbs(p) {
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return filepath.Join(wd, p), nil
}
