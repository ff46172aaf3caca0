package layers

import "strings"

// Some files in a project are run later by the host, outside any sandbox:
// git runs its config (core.fsmonitor, core.pager, aliases, filter drivers)
// and hooks on the next git command, and a `.git` planted anywhere is a
// repository whose config git reads there; hutch reads a hutch.toml for the
// next run; direnv runs .envrc on cd; editors run the tasks and tools their
// settings name. Diff marks changes to them and Apply holds them back.

// RunsLater says why a change at rel (slash-separated, relative to the
// project) can make the host run code later, or "" when it cannot.
func RunsLater(rel string) string {
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		// Case folded: on a case-insensitive file system (a casefolded
		// directory, a vfat stick) .GIT is .git.
		p = strings.ToLower(p)
		last := i == len(parts)-1
		switch {
		case p == ".git" && !last && gitData(parts[i+1:]):
			// A repository's data (objects, refs, the index, HEAD) runs
			// nothing: commits made inside apply like any file. A new
			// repository's .git is itself a change, held, and everything
			// beneath a held directory waits with it.
			return ""
		case p == ".git":
			return "git's own files: git on the host runs what its config and hooks say"
		case p == ".vscode" || p == ".idea":
			return "editor settings: the editor runs the tasks and tools they name"
		case last && (p == "hutch.toml" || p == ".hutch.toml"):
			return "a hutch profile: it sets what the next sandbox may do"
		case last && p == ".envrc":
			return "direnv runs it when you enter the directory"
		}
	}
	return ""
}

// gitData reports whether rest (beneath a .git) is repository data that
// git never runs: not config, hooks, info, modules, worktrees, nor the todo
// lists of a rebase in progress (whose exec lines run on --continue).
func gitData(rest []string) bool {
	switch rest[0] {
	case "objects", "refs", "logs":
		return true
	case "index", "HEAD", "ORIG_HEAD", "FETCH_HEAD", "COMMIT_EDITMSG", "packed-refs":
		return len(rest) == 1
	}
	return false
}

// MarkRunsLater sets RunsLater on the changes it applies to.
func MarkRunsLater(changes []Change) {
	for i := range changes {
		changes[i].RunsLater = RunsLater(changes[i].Path)
	}
}

// RunLaterAllowed says which held changes an apply may make: all with
// all, else those at or beneath a path in paths that itself runs later
// (named on purpose: `.envrc`, `.git/hooks`; `.` or `src` is not).
func RunLaterAllowed(all bool, paths []string) func(rel string) bool {
	var named []string
	for _, p := range paths {
		if RunsLater(p) != "" {
			named = append(named, p)
		}
	}
	return func(rel string) bool { return all || len(named) > 0 && Selected(rel, named) }
}
