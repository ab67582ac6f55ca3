package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// usageError is a mistake on the command line: exit code 2, with usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

const mainUsage = `dropgate — FTP/SFTP ingestion gateway for business messaging

Usage:
  dropgate serve [--config FILE] [--data DIR] [--admin-addr ADDR] [--sftp-addr ADDR] [--ftp-addr ADDR]
  dropgate check-config --config FILE
  dropgate hash-password            (reads the password from stdin)
  dropgate migrate --to postgres --dsn DSN [--config FILE]   (copies SQLite into PostgreSQL)
  dropgate jobs [ID] [--follow]     (the admin commands talk to a running daemon's API)
  dropgate files [--rejected]
  dropgate send --partner P --template T --to ADDR [--var name=value]...
  dropgate retry JOB
  dropgate cancel JOB
  dropgate version

Run "dropgate COMMAND --help" for a command's flags.
`

// run is the whole program: main only adds signals and the exit code, so
// tests can run any command in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return &usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "check-config":
		return runCheckConfig(rest, getenv, stdout, stderr)
	case "hash-password":
		return runHashPassword(rest, stdin, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout, stderr)
	case "jobs":
		return runJobs(ctx, rest, getenv, stdout, stderr)
	case "files":
		return runFiles(ctx, rest, getenv, stdout, stderr)
	case "send":
		return runSend(ctx, rest, getenv, stdout, stderr)
	case "retry", "cancel":
		return runJobAction(ctx, cmd, rest, getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "dropgate", buildVersion())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, mainUsage)
		return nil
	default:
		fmt.Fprint(stderr, mainUsage)
		return &usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return version
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; --help is success, anything else a usage error.
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return false, &usageError{fmt.Sprintf("unexpected argument %q", strings.Join(fs.Args(), " "))}
	}
	return false, nil
}
