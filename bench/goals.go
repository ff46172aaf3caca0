package main

import "fmt"

// goals checks this run against the goals of issues 8 and 20. The bench
// reports them; no test asserts them.
func (b *bench) goals() []Goal {
	rep := b.rep
	var gs []Goal
	// atMost: the ratio a/b should be at most target.
	atMost := func(goal, a, bb string, target float64) {
		g := Goal{Goal: goal, Target: target}
		ra, rb := rep.row(a), rep.row(bb)
		switch {
		case ra == nil || rb == nil:
			g.Status, g.Value = "not measured", "not run (-only)"
		case !ra.ok():
			g.Status, g.Value = "not measurable", ra.Name+": "+noteText(ra)
		case !rb.ok():
			g.Status, g.Value = "not measurable", rb.Name+": "+noteText(rb)
		default:
			g.Ratio = ra.Stats.Median / rb.Stats.Median
			g.Value = fmt.Sprintf("%.2f× (%s vs %s %s)", g.Ratio, num(ra.Stats.Median), num(rb.Stats.Median), ra.Unit)
			g.Status = "met"
			if g.Ratio > target {
				g.Status = "**missed**"
			}
		}
		gs = append(gs, g)
	}
	// cpuAtMost: the ratio of a's median CPU time to b's should be at
	// most target.
	cpuAtMost := func(goal, a, bb string, target float64) {
		g := Goal{Goal: goal, Target: target}
		ra, rb := rep.row(a), rep.row(bb)
		switch {
		case ra == nil || rb == nil:
			g.Status, g.Value = "not measured", "not run (-only)"
		case !ra.ok() || ra.CPU == nil:
			g.Status, g.Value = "not measurable", ra.Name+": "+noteText(ra)
		case !rb.ok() || rb.CPU == nil:
			g.Status, g.Value = "not measurable", rb.Name+": "+noteText(rb)
		default:
			g.Ratio = ra.CPU.Median / rb.CPU.Median
			g.Value = fmt.Sprintf("%.2f× (%s vs %s ms of CPU)", g.Ratio, num(ra.CPU.Median), num(rb.CPU.Median))
			g.Status = "met"
			if g.Ratio > target {
				g.Status = "**missed**"
			}
		}
		gs = append(gs, g)
	}
	// withBind notes what the bind-mounted project gives meanwhile.
	withBind := func(bind, native string) {
		g := &gs[len(gs)-1]
		if x := rep.ratio(bind, native); x > 0 {
			g.Note = fmt.Sprintf("with the project bound rw instead: %.2f×", x)
		}
	}
	atMost("`hutch run -- true` ≤ 1.5× bwrap", "startup/hutch", "startup/bwrap", 1.5)
	atMost("`hutch run --network proxy -- true` ≤ 1.5× bwrap (issue 20)", "startup/hutch-proxy", "startup/bwrap", 1.5)
	cpuAtMost("`hutch run -- true`: CPU ≤ 3× bwrap's (issue 20)", "startup/hutch", "startup/bwrap", 3)
	cpuAtMost("`hutch run --network proxy -- true`: CPU ≤ 3× bwrap's (issue 20)", "startup/hutch-proxy", "startup/bwrap", 3)
	atMost("`hutch run -- true` ≤ 0.25× rootlesskit --net=host", "startup/hutch", "startup/rootlesskit-host", 0.25)
	atMost("hutch with slirp4netns ≤ 0.5× rootlesskit --net=slirp4netns", "startup/hutch-slirp4netns", "startup/rootlesskit-slirp4netns", 0.5)
	atMost("kernel-overlay project: file-system workload ≤ 1.3× native", "fs/hutch-overlay-kernel", "fs/native", 1.3)
	withBind("fs/hutch", "fs/native")
	atMost("kernel-overlay project: go build ≤ 1.1× native", "gobuild/hutch-overlay-kernel", "gobuild/native", 1.1)
	withBind("gobuild/hutch", "gobuild/native")

	// atLeast for throughputs.
	g := Goal{Goal: "slirp4netns mode ≥ 80% of raw slirp4netns throughput (iperf3)", Target: 0.8}
	hs, raw := rep.row("network/iperf3-hutch-slirp4netns"), rep.row("network/iperf3-rootlesskit-slirp4netns")
	switch {
	case hs == nil || raw == nil:
		g.Status, g.Value = "not measured", "not run (-only)"
	case !hs.ok():
		g.Status, g.Value = "not measurable", noteText(hs)
	case !raw.ok():
		g.Status, g.Value = "not measurable", "raw slirp4netns: "+noteText(raw)
	default:
		g.Ratio = hs.Stats.Median / raw.Stats.Median
		g.Value = fmt.Sprintf("%.0f%% (%s vs %s Gbit/s)", 100*g.Ratio, num(hs.Stats.Median), num(raw.Stats.Median))
		g.Status = "met"
		if g.Ratio < g.Target {
			g.Status = "**missed**"
		}
	}
	gs = append(gs, g)
	g = Goal{Goal: "proxy mode ≥ 5 Gbit/s", Target: 5}
	switch px := rep.row("network/http-bulk-hutch-proxy"); {
	case px == nil:
		g.Status, g.Value = "not measured", "not run (-only)"
	case !px.ok():
		g.Status, g.Value = "not measurable", noteText(px)
	default:
		g.Value = fmt.Sprintf("%s Gbit/s (HTTP download of 1 GiB through the proxy)", num(px.Stats.Median))
		g.Status = "met"
		if px.Stats.Median < g.Target {
			g.Status = "**missed**"
		}
	}
	gs = append(gs, g)
	return gs
}
