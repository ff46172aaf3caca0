package main

// Slurm runs jobs in hutch: srun and sbatch --container=BUNDLE on the
// one-node cluster scripts/slurm-up.sh starts, whose oci.conf runs
// `hutch oci run` with the site profile (docs/slurm.md). As the
// unprivileged test user, like every sandbox test. Under
// HUTCH_TEST_STRICT=1 a cluster that is missing or down fails these tests.

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestSlurmCluster: the cluster itself runs a plain job and passes its
// exit status, so that a failure of the tests below is hutch's.
func TestSlurmCluster(t *testing.T) {
	requireSlurm(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := slurmCmd(ctx, t, "srun", "true").CombinedOutput(); err != nil {
		t.Fatalf("srun true: %v\n%s", err, out)
	}
	out, err := slurmCmd(ctx, t, "srun", "sh", "-c", "exit 7").CombinedOutput()
	if exitCode(err) != 7 {
		t.Fatalf("srun sh -c 'exit 7': %v, want exit 7\n%s", err, out)
	}
}

// TestSlurmForcedContainer: docs/slurm.md's job_submit.lua, which the test
// cluster applies to its partition "contained", refuses srun and sbatch
// without --container, with its message, and lets a container job run.
func TestSlurmForcedContainer(t *testing.T) {
	requireSlurm(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const refusal = "this cluster runs every job in hutch: submit with --container=BUNDLE"
	for _, args := range [][]string{{"srun", "-p", "contained", "true"}, {"sbatch", "-p", "contained", "--wrap", "true"}} {
		out, err := slurmCmd(ctx, t, args[0], args[1:]...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), refusal) {
			t.Errorf("%v: want refused with %q, got %v:\n%s", args, refusal, err, out)
		}
	}
	b := slurmBundle(t, jobBundle{})
	out, err := slurmCmd(ctx, t, "srun", "-p", "contained", "--container="+b, "sh", "-c", "exit 3").CombinedOutput()
	if exitCode(err) != 3 {
		t.Errorf("srun -p contained --container: %v, want exit 3\n%s", err, out)
	}
}
