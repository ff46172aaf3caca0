package sandbox

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/hutch-sandbox/hutch/internal/mutate"
)

// DefaultDotfiles are what hutch shell binds into its empty home, read-only,
// so that your shell is yours inside: rc files, readline's, the prompt's,
// and git's identity (its credentials filtered out).
var DefaultDotfiles = []string{".bashrc", ".bash_profile", ".profile", ".inputrc", ".zshrc", ".config/starship.toml", ".gitconfig"}

// maxDotfile bounds a dotfile hutch reads to filter (.gitconfig).
const maxDotfile = 1 << 20

// DotfileFact is what the host holds at one dotfile: the regular file it
// leads to (symlinks resolved: dotfiles repositories link them), or the
// filtered content to show instead, or why it is not shown.
type DotfileFact struct {
	Src     string `json:"src,omitempty"`
	Data    string `json:"data,omitempty"`
	Refused string `json:"refused,omitempty"`
}

// Dotfiles are the dotfiles spec binds: process.dotfiles when a profile
// sets it, else the default set for hutch shell and none for hutch run.
func Dotfiles(spec Spec) []string {
	if spec.Process.Dotfiles != nil {
		return spec.Process.Dotfiles
	}
	if spec.Shell {
		return DefaultDotfiles
	}
	return nil
}

// ProbeDotfiles finds each dotfile on the host. One that is missing is
// left out; one that leads into a secret (or is not a regular file) is
// refused, with the reason. The CLI calls it before NewPlan, which stays
// pure.
func ProbeDotfiles(host *Host, names []string) map[string]DotfileFact {
	if len(names) == 0 || host.Home == "" {
		return nil
	}
	hidden := host.alwaysHidden()
	for _, r := range host.RealPaths {
		hidden = append(hidden, r)
	}
	out := map[string]DotfileFact{}
	for _, name := range names {
		p := filepath.Join(host.Home, name)
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			out[name] = DotfileFact{Refused: "a symlink that leads nowhere"}
			continue
		}
		if s := hiddenAt(hidden, p, real); s != "" && !mutate.Off("dotfiles-secret") {
			out[name] = DotfileFact{Refused: "inside " + s + ", which is never shown"}
			continue
		}
		fi, err := os.Stat(real)
		if err != nil || !fi.Mode().IsRegular() {
			out[name] = DotfileFact{Refused: "not a regular file"}
			continue
		}
		if filepath.Base(name) == ".gitconfig" && !mutate.Off("dotfiles-gitconfig") {
			data, err := gitconfigWithoutCredentials(real)
			if err != nil {
				out[name] = DotfileFact{Refused: err.Error()}
				continue
			}
			out[name] = DotfileFact{Data: data}
			continue
		}
		out[name] = DotfileFact{Src: real}
	}
	return out
}

// hiddenAt is the hidden path p or real lies in, if any.
func hiddenAt(hidden []string, p, real string) string {
	for _, h := range hidden {
		if isWithin(h, p) || isWithin(h, real) {
			return h
		}
	}
	return ""
}

// A .gitconfig line git would read as a credential: a credential section,
// a helper, an extra HTTP header (bearer tokens), a token or password, or
// a URL rewrite that carries user:password@. Compiled on first use, not
// at every hutch start (issue 20): only a run that binds ~/.gitconfig
// needs them.
var gitRegexps = sync.OnceValue(func() (r struct{ section, secretKey, userinfo *regexp.Regexp }) {
	r.section = regexp.MustCompile(`^\s*\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]`)
	r.secretKey = regexp.MustCompile(`(?i)^\s*(helper|extraheader|[a-z0-9-]*token|password|[a-z0-9-]*secret)\s*(=|$)`)
	r.userinfo = regexp.MustCompile(`://[^/@\s"]*:[^/@\s"]*@`)
	return r
})

// gitconfigWithoutCredentials is the file's content with every credential
// dropped: whole [credential] sections, and keys that hold or fetch one.
func gitconfigWithoutCredentials(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Size() > maxDotfile {
		return "", errTooLarge
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var b strings.Builder
	b.WriteString("# ~/.gitconfig as hutch shows it: credentials, helpers and tokens removed\n")
	skip := false
	re := gitRegexps()
	gitSection, gitSecretKey, gitUserinfoRe := re.section, re.secretKey, re.userinfo
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxDotfile)
	for sc.Scan() {
		line := sc.Text()
		if m := gitSection.FindStringSubmatch(line); m != nil {
			sec := strings.ToLower(m[1])
			skip = sec == "credential" || strings.HasPrefix(sec, "credential.") || gitUserinfoRe.MatchString(m[2])
			if skip {
				continue
			}
			// A one-line "[section] key = value" keeps its key checked below.
			line = strings.TrimSpace(line[len(m[0]):])
			b.WriteString(m[0] + "\n")
			if line == "" {
				continue
			}
		}
		if skip || gitSecretKey.MatchString(line) || gitUserinfoRe.MatchString(line) {
			continue
		}
		b.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return b.String(), nil
}

type dotfileError string

func (e dotfileError) Error() string { return string(e) }

const errTooLarge = dotfileError("larger than 1 MiB")

// planDotfiles binds the dotfiles into an empty home, read-only, after it
// is mounted: a file of filtered content for .gitconfig, the resolved file
// for the others. Ones the host refused are noted.
func planDotfiles(spec Spec, host *Host, p *Plan, add func(Mount)) {
	for _, name := range Dotfiles(spec) {
		fact, ok := host.Dotfiles[name]
		if !ok {
			continue
		}
		dst := filepath.Join(host.Home, name)
		switch {
		case fact.Refused != "":
			p.Notes = append(p.Notes, "process.dotfiles: ~/"+name+" is not shown: "+fact.Refused)
		case fact.Data != "":
			add(Mount{Kind: MountFile, Dst: dst, Data: fact.Data, Optional: true})
		default:
			add(Mount{Kind: MountBind, Src: fact.Src, Dst: dst, RO: true, Optional: true})
		}
	}
}
