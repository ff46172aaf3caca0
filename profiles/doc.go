// Package profiles is hutch's input format: hutch.toml and its kin.
//
// A profile is a TOML file whose tables mirror [sandbox.Spec]:
// [filesystem], [network], [env], [process], [limits] and [security], plus
// a top-level extends. [Load] finds and merges the profiles that apply, in
// order of precedence:
//
//  1. the built-in "default" profile;
//  2. your own configuration, $XDG_CONFIG_HOME/hutch/config.toml (user
//     profiles live beside it, in profiles/NAME.toml);
//  3. the project's hutch.toml (or .hutch.toml), found by walking up from
//     the working directory, stopping before $HOME and /; or --profile;
//  4. command-line flags ([Profile.SetFlag]).
//
// Each file first applies the profiles it extends, in order. Lists append,
// env.set merges by name, scalars override. Every profile is applied once.
//
// # Trust
//
// The project's profile arrives with a cloned repository. It may narrow
// anything, but whatever it asks for beyond layers 1 and 2 (writable paths
// outside the project, secrets, the network, …: see [Ask]) needs your
// approval of that exact content, recorded by sha256 under your config
// directory ([Profile.Trust]), or --trust for one run.
//
// # Errors
//
// Every problem is an [*Error] located at FILE:LINE:COL and key, with a
// hint; [Profile.Spec] maps the Spec's own validation errors back to the
// file, line or flag that set the offending value.
//
// Data flows one way: Load → [Profile.Spec] → sandbox.NewPlan. This package
// reads files and the environment but makes no other system calls.
package profiles
