package profiles

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Trust: a project's hutch.toml arrives with a cloned repository, so it is
// untrusted input. It may narrow anything; it may not widen what your own
// configuration allows until you approve that exact content, as direnv's
// `allow` does. Approval records the sha256 of the file, and of every file
// it extends by path, under your config directory; a changed file needs
// approval again.

// TrustState is whether the project's profile may run.
type TrustState int

const (
	// TrustNotNeeded: there is no project profile, or it asks for nothing
	// beyond your configuration, or you picked it by name with --profile.
	TrustNotNeeded TrustState = iota
	// Trusted: you approved this exact content with `hutch trust`.
	Trusted
	// TrustedByFlag: --trust or HUTCH_TRUST=1 approves it for this run.
	TrustedByFlag
	// Untrusted: it widens your configuration and was never approved.
	Untrusted
	// TrustChanged: you approved it once, and it has changed since.
	TrustChanged
)

func (t TrustState) String() string {
	return [...]string{"not needed", "trusted", "trusted for this run (--trust)", "not trusted", "changed since you trusted it"}[t]
}

// OK reports whether a sandbox may run with the profile.
func (t TrustState) OK() bool { return t <= TrustedByFlag }

// Ask is one thing a project profile asks for beyond your configuration.
type Ask struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	// What says why it is a widening.
	What string `json:"what"`
	Src  Source `json:"origin"`
}

func (a Ask) String() string {
	return fmt.Sprintf("%s: %s %s: %s", a.Src.Where(), a.Key, a.Value, a.What)
}

// FormatAsks writes asks one per line, those that come from a profile the
// project extends grouped under the extends that brought them in.
func FormatAsks(asks []Ask) []string {
	anchor := func(a Ask) (int, int) {
		if a.Src.via != nil && a.Src.Kind != FromProject {
			return a.Src.via.Position()
		}
		return a.Src.Position()
	}
	asks = append([]Ask(nil), asks...)
	sort.SliceStable(asks, func(i, j int) bool {
		li, ci := anchor(asks[i])
		lj, cj := anchor(asks[j])
		return li < lj || li == lj && ci < cj
	})
	var out []string
	group := ""
	for _, a := range asks {
		if a.Src.via == nil || a.Src.Kind == FromProject {
			group = ""
			out = append(out, a.String())
			continue
		}
		name := a.Src.Name
		if a.Src.via.pos != nil && a.Src.via.pos.raw != "" {
			name = a.Src.via.pos.raw
		} else if name == "" {
			name = a.Src.File
		}
		g := fmt.Sprintf("%s: extends %q, which asks for:", a.Src.via.Where(), name)
		if g != group {
			out = append(out, g)
			group = g
		}
		out = append(out, fmt.Sprintf("    %s %s: %s", a.Key, a.Value, a.What))
	}
	return out
}

// Asks lists what the project's profile asks for beyond your
// configuration (empty when nothing, or when there is no project profile).
func (p *Profile) Asks() []Ask { return p.asks }

// TrustState says whether the project's profile may run.
func (p *Profile) TrustState() TrustState { return p.trust }

// also appends a plain-words detail to a widening's description.
func also(detail string) string {
	if detail == "" {
		return ""
	}
	return ": " + detail
}

func number(v any) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case float64:
		return x
	case time.Duration:
		return float64(x)
	}
	return 0
}

// TrustError refuses to run a project profile that widens your
// configuration without your approval.
type TrustError struct {
	// File is the project profile as the user would name it; Path its
	// absolute path.
	File, Path string
	Changed    bool
	Asks       []Ask
}

func (e *TrustError) Error() string {
	var b strings.Builder
	if e.Changed {
		fmt.Fprintf(&b, "%s changed since you trusted it, and it asks for more than your configuration allows:", e.File)
	} else {
		fmt.Fprintf(&b, "%s is not trusted, and it asks for more than your configuration allows:", e.File)
	}
	for _, l := range FormatAsks(e.Asks) {
		b.WriteString("\n  " + l)
	}
	return b.String()
}

// Hint says how to approve the file.
func (e *TrustError) Hint() string {
	return fmt.Sprintf("read %s, then approve this exact content with: hutch trust %s\nor approve it for one run with --trust (HUTCH_TRUST=1 in CI)", e.File, shellQuote(e.File))
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./~:+@%=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// trustError is the refusal for p, or nil when it may run.
func (p *Profile) trustError() error {
	if p.trust.OK() {
		return nil
	}
	root := p.trustFiles[0]
	return &TrustError{File: root.display, Path: root.path, Changed: p.trust == TrustChanged, Asks: p.asks}
}

// trustRecord is the text hutch stores for an approved profile: one line
// per file, as sha256sum(1) prints them, the project's profile first.
func trustRecord(files []*file) string {
	var b strings.Builder
	for _, f := range files {
		sum := sha256.Sum256(f.data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), f.path)
	}
	return b.String()
}

// trustPath is where the approval of the profile at path is kept: one file
// per project profile, named by the hash of its path.
func trustPath(configDir, path string) string {
	sum := sha256.Sum256([]byte(path))
	return filepath.Join(configDir, "trust", hex.EncodeToString(sum[:16]))
}

func checkTrust(configDir string, files []*file) TrustState {
	have, err := os.ReadFile(trustPath(configDir, files[0].path))
	if err != nil {
		return Untrusted
	}
	if bytes.Equal(have, []byte(trustRecord(files))) {
		return Trusted
	}
	return TrustChanged
}

// Digest is the sha256 of the project's profile, as `hutch trust` records it.
func (p *Profile) Digest() string {
	if len(p.trustFiles) == 0 {
		return ""
	}
	sum := sha256.Sum256(p.trustFiles[0].data)
	return hex.EncodeToString(sum[:])
}

// TrustFiles lists the files an approval covers: the project's profile and
// the files it extends by path (absolute paths).
func (p *Profile) TrustFiles() []string {
	var out []string
	for _, f := range p.trustFiles {
		out = append(out, f.path)
	}
	return out
}

// Trust records your approval of the project's profile as it is now.
func (p *Profile) Trust() error {
	if len(p.trustFiles) == 0 {
		return errors.New("there is no project profile to trust")
	}
	dst := trustPath(p.configDir, p.trustFiles[0].path)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".trust-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(trustRecord(p.trustFiles)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	p.trust = TrustNotNeeded
	if len(p.asks) > 0 {
		p.trust = Trusted
	}
	return nil
}

// Revoke forgets the approval of the profile at path (a file, or a
// directory holding hutch.toml). It reports whether there was one.
func Revoke(configDir, path string) (bool, error) {
	err := os.Remove(trustPath(configDir, canonicalProjectFile("", path)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// readTrustRecord parses a record (for tests and `hutch trust` output).
func readTrustRecord(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if ok {
			out[path] = sum
		}
	}
	return out
}

// canonicalProjectFile is the absolute, symlink-free path trust records are
// keyed by; a directory stands for its hutch.toml.
func canonicalProjectFile(dir, path string) string {
	if dir == "" {
		dir, _ = os.Getwd()
	}
	abs := absFrom(resolve(dir), path)
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		abs = filepath.Join(abs, projectFileNames[0])
	}
	return resolve(abs)
}
