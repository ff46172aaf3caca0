package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hutch-sandbox/hutch/internal/testenv"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/supervise"
)

// TestOverlayDrivers runs the overlay and session scripts once per
// overlay driver: a user configuration ($XDG_CONFIG_HOME/hutch/config.toml)
// sets filesystem.overlay, and $HUTCH_DRIVER_CHECK lets a script check the
// driver hutch --verbose reports. (TestScripts runs them too, with "auto";
// there $HUTCH_DRIVER_CHECK is empty.) Under HUTCH_TEST_STRICT=1 a driver
// that cannot work here is a failure, not a skip.
func TestOverlayDrivers(t *testing.T) {
	var files []string
	for _, pat := range []string{"testdata/script/overlay_*.txtar", "testdata/script/session_*.txtar", "testdata/script/image_run.txtar", "testdata/script/image_layers.txtar"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no overlay scripts")
	}
	for _, driver := range []string{sandbox.OverlayKernel, sandbox.OverlayFuse} {
		t.Run(driver, func(t *testing.T) {
			testenv.RequireUserNS(t)
			if reason := supervise.OverlayDriverReason(driver); reason != "" {
				testenv.Skip(t, reason)
			}
			p := scriptParams()
			p.Files = files
			base := p.Setup
			p.Setup = func(env *testscript.Env) error {
				if err := base(env); err != nil {
					return err
				}
				// The driver, through the user's own config.
				cfg := filepath.Join(env.WorkDir, ".driver-config")
				if err := os.MkdirAll(filepath.Join(cfg, "hutch"), 0o700); err != nil {
					return err
				}
				toml := "[filesystem]\noverlay = \"" + driver + "\"\n"
				if err := os.WriteFile(filepath.Join(cfg, "hutch", "config.toml"), []byte(toml), 0o600); err != nil {
					return err
				}
				env.Setenv("XDG_CONFIG_HOME", cfg)
				env.Setenv("HUTCH_DRIVER_CHECK", driver)
				return nil
			}
			testscript.Run(t, p)
		})
	}
}
