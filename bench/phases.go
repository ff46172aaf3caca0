package main

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// hutch run --debug-timing prints, from supervisor and init on one clock:
//
//	hutch: timing: cli        profiles loaded             +  0.52ms
//	hutch: timing: supervisor launch                       +  0.83ms  (at   0.83ms)
//	hutch: timing: init and command used 0.93ms user, 7.47ms system
//
// A mark without "(at …)" is the first, counted from the clock's origin.
var (
	markRE = regexp.MustCompile(`^hutch: timing: (\S+)\s+(.+?)\s+\+\s*([0-9.]+)ms(?:\s+\(at\s+([0-9.]+)ms\))?\s*$`)
	cpuRE  = regexp.MustCompile(`^hutch: timing: init and command used ([0-9.]+)ms user, ([0-9.]+)ms system`)
)

type mark struct {
	who, phase string
	at         float64
}

// phases breaks hutch's start-up down with its own trace: each mark's time
// since the previous mark of either process, in the order they happened,
// and what the trace cannot see (the exec of hutch, its Go runtime and
// package init before the clock starts; removing the run directory and
// exiting after the last mark).
func (b *bench) phases(ctx context.Context) {
	if !b.tools["hutch"].OK {
		return
	}
	b.log.printf("phases: %d runs of hutch run --debug-timing, subuid map and one-id map (and of each -compare build), interleaved", b.o.phaseRuns)
	var sets []*phaseRuns
	var ts []*timed
	type config struct {
		name string
		argv []string
	}
	configs := []config{
		{"hutch, subuid map (default)", b.hutchRun([]string{"--debug-timing"}, "true")},
		{"hutch --idmap single", b.hutchRun([]string{"--debug-timing", "--idmap", "single"}, "true")},
	}
	// Another build given with -compare: its trace beside this one's, in
	// the same rounds (a patch's effect, phase by phase).
	for _, c := range b.o.compare {
		configs = append(configs,
			config{"hutch build " + c.name + ", subuid map", []string{c.path, "run", "--debug-timing", "--", "true"}},
			config{"hutch build " + c.name + " --idmap single", []string{c.path, "run", "--debug-timing", "--idmap", "single", "--", "true"}})
	}
	for _, c := range configs {
		pr := b.newPhaseRuns(c.name, c.argv)
		sets, ts = append(sets, pr), append(ts, pr.t)
	}
	b.series(ctx, ts, 3, b.o.phaseRuns, 30*time.Second)
	for _, pr := range sets {
		b.rep.Phases = append(b.rep.Phases, pr.summarize())
	}
}

// phaseRuns collects the traces of one configuration.
type phaseRuns struct {
	ps        PhaseSet
	t         *timed
	runs      [][]mark
	user, sys []float64
}

func (b *bench) newPhaseRuns(name string, argv []string) *phaseRuns {
	pr := &phaseRuns{ps: PhaseSet{Name: name, How: shellQuote(append([]string{"hutch"}, argv[1:]...))}}
	pr.t = &timed{row: &Row{}, cmd: b.cmd(argv...), parse: func(res runResult) error {
		var ms []mark
		for _, l := range strings.Split(res.stderr, "\n") {
			if m := cpuRE.FindStringSubmatch(l); m != nil {
				u, _ := strconv.ParseFloat(m[1], 64)
				s, _ := strconv.ParseFloat(m[2], 64)
				pr.user, pr.sys = append(pr.user, u), append(pr.sys, s)
				continue
			}
			if m := markRE.FindStringSubmatch(l); m != nil {
				at, _ := strconv.ParseFloat(m[3], 64)
				if m[4] != "" {
					at, _ = strconv.ParseFloat(m[4], 64)
				}
				ms = append(ms, mark{who: m[1], phase: m[2], at: at})
			}
		}
		if len(ms) == 0 {
			return fmt.Errorf("hutch printed no timing marks (is --debug-timing still there?)")
		}
		ms = append(ms, mark{who: "outside", phase: "wall", at: float64(res.wall) / float64(time.Millisecond)})
		pr.runs = append(pr.runs, ms)
		return nil
	}}
	return pr
}

func (pr *phaseRuns) summarize() PhaseSet {
	ps, row, runs, user, sys := pr.ps, pr.t.row, pr.runs, pr.user, pr.sys
	if !row.ok() {
		ps.Note = "not measured: " + row.Note
		return ps
	}
	ps.Runs, ps.Wall = len(runs), *row.Stats

	// Per run, sort the marks in time and charge each the time since the
	// one before it; the last real mark is "init reaped".
	type acc struct {
		who, phase string
		delta, at  []float64
	}
	accs := map[string]*acc{}
	var outside []float64
	for _, ms := range runs {
		wall := ms[len(ms)-1].at
		ms = ms[:len(ms)-1]
		sort.SliceStable(ms, func(i, j int) bool { return ms[i].at < ms[j].at })
		prev := 0.0
		for _, m := range ms {
			k := m.who + "\x00" + m.phase
			a := accs[k]
			if a == nil {
				a = &acc{who: m.who, phase: m.phase}
				accs[k] = a
			}
			a.delta = append(a.delta, m.at-prev)
			a.at = append(a.at, m.at)
			prev = m.at
		}
		outside = append(outside, wall-prev)
	}
	for _, a := range accs {
		ps.Phases = append(ps.Phases, Phase{Who: a.who, Phase: a.phase, Delta: summarize(a.delta), At: summarize(a.at)})
	}
	sort.Slice(ps.Phases, func(i, j int) bool { return ps.Phases[i].At.Median < ps.Phases[j].At.Median })
	ps.Phases = append(ps.Phases, Phase{Who: "outside", Phase: "outside the trace: exec of hutch, Go runtime start and package init before its clock starts; run-dir removal, exit and wait after the last mark", Delta: summarize(outside)})
	if len(user) > 0 {
		ps.CPU = fmt.Sprintf("%.2f ms user + %.2f ms system", summarize(user).Median, summarize(sys).Median)
	}
	ps.Note = "Each mark is charged the time since the previous mark of either process, so the column adds up to the time at \"init reaped\"; the supervisor and init overlap where both print."
	return ps
}
