package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Row statuses.
const (
	statusOK          = "ok"
	statusUnavailable = "unavailable" // the tool or hutch feature is missing
	statusError       = "error"       // present, but failed here
)

// Row is one measured (or not measurable) configuration.
type Row struct {
	ID    string `json:"id"` // group/name, stable across runs
	Group string `json:"group"`
	Name  string `json:"name"`
	How   string `json:"how,omitempty"` // the command, or how it was set up
	Unit  string `json:"unit"`
	// HigherIsBetter is set for throughputs.
	HigherIsBetter bool `json:"higher_is_better,omitempty"`

	Status string `json:"status"`
	Note   string `json:"note,omitempty"`

	Stats   *Stats    `json:"stats,omitempty"`
	Samples []float64 `json:"samples,omitempty"`
	// Parts break the measurement down: file-system phases, processes of a
	// process tree.
	Parts []Part `json:"parts,omitempty"`
	// Ratios are this row's median over the named row's median.
	Ratios map[string]float64 `json:"ratios,omitempty"`
	// CPU is user+system time per run of the process and all it waited
	// for (its helpers, PID 1 and the command), in ms, for rows timed as
	// whole processes; CPURatios are its median over the named row's.
	CPU        *Stats             `json:"cpu_ms,omitempty"`
	CPUSamples []float64          `json:"cpu_samples,omitempty"`
	CPURatios  map[string]float64 `json:"cpu_ratios,omitempty"`
	// Reference rows explain others (hutch version, a static Go binary);
	// they are not peers.
	Reference bool `json:"reference,omitempty"`
}

// Part is a named piece of a row's measurement.
type Part struct {
	Name  string `json:"name"`
	Stats Stats  `json:"stats"`
	Note  string `json:"note,omitempty"`
}

// Stats summarises samples.
type Stats struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	P90    float64 `json:"p90"`
	Max    float64 `json:"max"`
	Mean   float64 `json:"mean"`
}

func summarize(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	// p90 by nearest rank.
	p90 := s[int(math.Ceil(0.9*float64(n)))-1]
	return Stats{N: n, Median: med, Min: s[0], P90: p90, Max: s[n-1], Mean: sum / float64(n)}
}

func (r *Row) setSamples(xs []float64) {
	if len(xs) == 0 {
		r.fail(fmt.Errorf("no samples"))
		return
	}
	st := summarize(xs)
	r.Stats, r.Samples, r.Status = &st, xs, statusOK
}

// setCPU records the CPU time of the samples set by setSamples.
func (r *Row) setCPU(xs []float64) {
	if r.Status != statusOK || len(xs) == 0 {
		return
	}
	st := summarize(xs)
	r.CPU, r.CPUSamples = &st, xs
}

func (r *Row) fail(err error) {
	r.Status, r.Note, r.Stats, r.Samples = statusError, err.Error(), nil, nil
	r.CPU, r.CPUSamples = nil, nil
}

func (r *Row) unavailable(why string) {
	r.Status, r.Note = statusUnavailable, why
}

func (r *Row) ok() bool { return r.Status == statusOK && r.Stats != nil }

// Goal is one target of issue 8, checked against this run.
type Goal struct {
	Goal   string  `json:"goal"`
	Value  string  `json:"value"`
	Target float64 `json:"target,omitempty"`
	Ratio  float64 `json:"ratio,omitempty"`
	Status string  `json:"status"` // met | missed | not measurable
	Note   string  `json:"note,omitempty"`
}

// Phase is one step of hutch's own --debug-timing trace.
type Phase struct {
	Who   string `json:"who"`   // supervisor | init | outside
	Phase string `json:"phase"` // as hutch prints it
	Delta Stats  `json:"delta_ms"`
	At    Stats  `json:"at_ms"`
}

// PhaseSet is the breakdown of one configuration.
type PhaseSet struct {
	Name   string  `json:"name"`
	How    string  `json:"how"`
	Runs   int     `json:"runs"`
	Wall   Stats   `json:"wall_ms"`
	Phases []Phase `json:"phases"`
	CPU    string  `json:"cpu,omitempty"` // init+command rusage, median
	Note   string  `json:"note,omitempty"`
}

// Report is everything one bench run found.
type Report struct {
	Date     time.Time         `json:"date"`
	Duration float64           `json:"duration_s"`
	Machine  Machine           `json:"machine"`
	Hutch    HutchInfo         `json:"hutch"`
	Tools    []Tool            `json:"tools"`
	Settings map[string]any    `json:"settings"`
	Rows     []*Row            `json:"results"`
	Phases   []PhaseSet        `json:"phases,omitempty"`
	Goals    []Goal            `json:"goals"`
	Notes    []string          `json:"notes,omitempty"`
	Extra    map[string]string `json:"extra,omitempty"`
}

// HutchInfo says which hutch was measured.
type HutchInfo struct {
	Binary  string `json:"binary"`
	Build   string `json:"build"`
	Commit  string `json:"commit,omitempty"`
	IDMap   string `json:"idmap_auto,omitempty"` // what --idmap auto resolved to
	Version string `json:"version,omitempty"`
}

func (rep *Report) row(id string) *Row {
	for _, r := range rep.Rows {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// ratio is a's median over b's, or 0 when either is missing.
func (rep *Report) ratio(a, b string) float64 {
	ra, rb := rep.row(a), rep.row(b)
	if ra == nil || rb == nil || !ra.ok() || !rb.ok() || rb.Stats.Median == 0 {
		return 0
	}
	return ra.Stats.Median / rb.Stats.Median
}

// cpuRatio is a's median CPU time over b's, or 0 when either is missing.
func (rep *Report) cpuRatio(a, b string) float64 {
	ra, rb := rep.row(a), rep.row(b)
	if ra == nil || rb == nil || !ra.ok() || !rb.ok() || ra.CPU == nil || rb.CPU == nil || rb.CPU.Median == 0 {
		return 0
	}
	return ra.CPU.Median / rb.CPU.Median
}

// addRatios fills every row's ratios against the baselines of its group.
func (rep *Report) addRatios(baselines map[string][]string) {
	for _, r := range rep.Rows {
		for _, base := range baselines[r.Group] {
			if base == r.ID {
				continue
			}
			if x := rep.ratio(r.ID, base); x > 0 {
				if r.Ratios == nil {
					r.Ratios = map[string]float64{}
				}
				r.Ratios[base] = x
			}
			if x := rep.cpuRatio(r.ID, base); x > 0 {
				if r.CPURatios == nil {
					r.CPURatios = map[string]float64{}
				}
				r.CPURatios[base] = x
			}
		}
	}
}

// Table layout per group: a title, and which ratios to show as columns.
var groupTables = []struct {
	group, title string
	ratioCols    []string
}{
	{"startup", "Start-up and teardown of `true` (wall clock and CPU: user+system of the tool and all it waited for, ms)", []string{"startup/bwrap", "startup/native"}},
	{"fs", "File-system workload: extract ~10k files, find, read all, delete (ms)", []string{"fs/native", "fs/bwrap-bind"}},
	{"gobuild", "`go build` of hutch's module, in the module cache, std pre-built (ms)", []string{"gobuild/native"}},
	{"memory", "Memory while a sandbox idles (`sleep`), the sandbox's own processes (MiB RSS)", nil},
	{"network", "Network, from inside, to a server on the host's 127.0.0.1", nil},
	{"services", "Start-up to \"job started\" beside services (ms; the services' own start dominates)", nil},
}

func writeMarkdown(w io.Writer, rep *Report) {
	m := rep.Machine
	fmt.Fprintf(w, "## hutch bench, %s\n\n", rep.Date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "Machine: %s; %d CPUs (%s), %s RAM; kernel %s; %s; %s.  \n", m.Hostname, m.CPUs, m.CPUModel, m.Memory, m.Kernel, m.OS, m.Go)
	fmt.Fprintf(w, "Load average before/after: %s / %s. hutch: %s (%s).  \n", m.LoadBefore, m.LoadAfter, rep.Hutch.Commit, rep.Hutch.Build)
	fmt.Fprintf(w, "Runs: start-up %v counted after %v warm-up, interleaved in random order; bench took %.0fs.\n\n",
		rep.Settings["startup_runs"], rep.Settings["warmup_runs"], rep.Duration)

	for _, g := range groupTables {
		var rows []*Row
		for _, r := range rep.Rows {
			if r.Group == g.group {
				rows = append(rows, r)
			}
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(w, "### %s\n\n", g.title)
		switch g.group {
		case "memory":
			writeMemoryTable(w, rows)
		case "network":
			writeNetworkTable(w, rows)
		default:
			writeTimeTable(w, rows, g.ratioCols)
		}
		fmt.Fprintln(w)
	}

	for _, ps := range rep.Phases {
		writePhases(w, ps)
	}

	if len(rep.Goals) > 0 {
		fmt.Fprintf(w, "### Goals (issues 8 and 20)\n\n| goal | this run | |\n|---|---|---|\n")
		for _, g := range rep.Goals {
			v := g.Value
			if g.Note != "" {
				v += " — " + g.Note
			}
			fmt.Fprintf(w, "| %s | %s | %s |\n", g.Goal, v, g.Status)
		}
		fmt.Fprintln(w)
	}
	if len(rep.Tools) > 0 {
		fmt.Fprintf(w, "### Tools\n\n")
		for _, t := range rep.Tools {
			state := t.Version
			if !t.OK {
				state = "**" + t.Why + "**"
			}
			fmt.Fprintf(w, "- %s: %s\n", t.Name, state)
		}
		fmt.Fprintln(w)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
}

// ratioCell is row id's ratio to base, "1" for base itself, empty when
// there is none.
func ratioCell(id, base string, ratios map[string]float64) string {
	switch {
	case id == base:
		return "1"
	case ratios[base] > 0:
		return fmt.Sprintf("%.2f", ratios[base])
	}
	return ""
}

func shortName(id string) string {
	if i := strings.IndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}

func writeTimeTable(w io.Writer, rows []*Row, ratioCols []string) {
	hasParts, hasCPU := false, false
	for _, r := range rows {
		if len(r.Parts) > 0 {
			hasParts = true
		}
		if r.CPU != nil {
			hasCPU = true
		}
	}
	// CPU: the median, and its ratio to the first baseline (bwrap's for
	// start-up): the figure a machine running many sandboxes pays.
	cpuCols := 0
	fmt.Fprintf(w, "| | median | min | p90 | runs |")
	for _, c := range ratioCols {
		fmt.Fprintf(w, " × %s |", shortName(c))
	}
	if hasCPU {
		cpuCols = 1 + min(1, len(ratioCols))
		fmt.Fprintf(w, " CPU ms (median) |")
		if len(ratioCols) > 0 {
			fmt.Fprintf(w, " CPU × %s |", shortName(ratioCols[0]))
		}
	}
	if hasParts {
		fmt.Fprintf(w, " phases (median) |")
	}
	fmt.Fprintf(w, "\n|---|--:|--:|--:|--:|%s", strings.Repeat("--:|", len(ratioCols)+cpuCols))
	if hasParts {
		fmt.Fprintf(w, "---|")
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		name := r.Name
		if r.Reference {
			name = "_" + name + "_"
		}
		if !r.ok() {
			fmt.Fprintf(w, "| %s | %s |%s\n", name, noteText(r), strings.Repeat(" |", 3+len(ratioCols)+cpuCols+boolInt(hasParts)))
			continue
		}
		s := r.Stats
		fmt.Fprintf(w, "| %s | %s | %s | %s | %d |", name, num(s.Median), num(s.Min), num(s.P90), s.N)
		for _, c := range ratioCols {
			fmt.Fprintf(w, " %s |", ratioCell(r.ID, c, r.Ratios))
		}
		if hasCPU {
			cpu := ""
			if r.CPU != nil {
				cpu = num(r.CPU.Median)
			}
			fmt.Fprintf(w, " %s |", cpu)
			if len(ratioCols) > 0 {
				fmt.Fprintf(w, " %s |", ratioCell(r.ID, ratioCols[0], r.CPURatios))
			}
		}
		if hasParts {
			var ps []string
			for _, p := range r.Parts {
				ps = append(ps, fmt.Sprintf("%s %s", p.Name, num(p.Stats.Median)))
			}
			fmt.Fprintf(w, " %s |", strings.Join(ps, ", "))
		}
		fmt.Fprintln(w)
	}
	for _, r := range rows {
		if r.ok() && r.Note != "" {
			fmt.Fprintf(w, "\n%s: **%s**\n", r.Name, r.Note)
		}
	}
	var hows []string
	for _, r := range rows {
		if r.How != "" {
			hows = append(hows, fmt.Sprintf("- %s: `%s`", r.Name, r.How))
		}
	}
	if len(hows) > 0 {
		fmt.Fprintf(w, "\n<details><summary>commands</summary>\n\n%s\n\n</details>\n", strings.Join(hows, "\n"))
	}
}

func writeMemoryTable(w io.Writer, rows []*Row) {
	fmt.Fprintf(w, "| | total RSS | processes (RSS / of which anonymous) |\n|---|--:|---|\n")
	for _, r := range rows {
		if !r.ok() {
			fmt.Fprintf(w, "| %s | %s | |\n", r.Name, noteText(r))
			continue
		}
		var ps []string
		for _, p := range r.Parts {
			ps = append(ps, fmt.Sprintf("%s %s", p.Name, p.Note))
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", r.Name, num(r.Stats.Median), strings.Join(ps, "; "))
	}
}

func writeNetworkTable(w io.Writer, rows []*Row) {
	fmt.Fprintf(w, "| | median | min | p90 | samples | |\n|---|--:|--:|--:|--:|---|\n")
	for _, r := range rows {
		if !r.ok() {
			fmt.Fprintf(w, "| %s | %s | | | | |\n", r.Name, noteText(r))
			continue
		}
		s := r.Stats
		extra := r.Note
		for _, base := range sortedKeys(r.Ratios) {
			x := r.Ratios[base]
			if extra != "" {
				extra += "; "
			}
			switch {
			case strings.HasSuffix(base, "rootlesskit-slirp4netns"):
				base = "raw slirp4netns"
			case strings.HasSuffix(base, "native"):
				base = "native"
			}
			if r.HigherIsBetter {
				extra += fmt.Sprintf("%.0f%% of %s", 100*x, base)
			} else {
				extra += fmt.Sprintf("%.2f× %s", x, base)
			}
		}
		fmt.Fprintf(w, "| %s | %s %s | %s | %s | %d | %s |\n", r.Name, num(s.Median), r.Unit, num(s.Min), num(s.P90), s.N, extra)
	}
}

func writePhases(w io.Writer, ps PhaseSet) {
	fmt.Fprintf(w, "### Where the time goes: %s (median of %d runs of `%s`)\n\n", ps.Name, ps.Runs, ps.How)
	if ps.Note != "" && len(ps.Phases) == 0 {
		fmt.Fprintf(w, "%s\n\n", ps.Note)
		return
	}
	fmt.Fprintf(w, "| process | phase (the step that ended) | + ms | at ms |\n|---|---|--:|--:|\n")
	for _, p := range ps.Phases {
		at := num(p.At.Median)
		if p.Who == "outside" {
			at = ""
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", p.Who, p.Phase, num(p.Delta.Median), at)
	}
	fmt.Fprintf(w, "| | wall clock, from outside | | %s |\n", num(ps.Wall.Median))
	if ps.CPU != "" {
		fmt.Fprintf(w, "\nhutch-init and the command used %s (median).\n", ps.CPU)
	}
	if ps.Note != "" {
		fmt.Fprintf(w, "\n%s\n", ps.Note)
	}
	fmt.Fprintln(w)
}

func noteText(r *Row) string {
	switch r.Status {
	case statusUnavailable:
		return r.Note
	case statusError:
		return "**error**: " + r.Note
	}
	return r.Status
}

func num(x float64) string {
	switch {
	case x == 0:
		return "0"
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// writeJSON writes rep to dir/DATE.json (DATE-2.json, … when taken).
func writeJSON(dir string, rep *Report) (string, error) {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", err
	}
	return writeFile(dir, rep.Date.Format("2006-01-02"), append(data, '\n'))
}

// writeFile writes data to dir/BASE.json, or BASE-2.json, … when taken,
// through a temporary file.
func writeFile(dir, base string, data []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for i := 1; ; i++ {
		name := base + ".json"
		if i > 1 {
			name = fmt.Sprintf("%s-%d.json", base, i)
		}
		path := filepath.Join(dir, name)
		if _, err := os.Lstat(path); err == nil {
			continue
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return "", err
		}
		return path, os.Rename(tmp, path)
	}
}
