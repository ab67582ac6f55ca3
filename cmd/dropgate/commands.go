package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/auth"
)

func runCheckConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check-config", "Usage: dropgate check-config --config FILE\n\nValidates a config file without starting anything.\n\n", stderr)
	path := fs.String("config", "", "config file to check (TOML)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *path == "" {
		fs.Usage()
		return &usageError{"--config is required"}
	}
	cfg, err := config.Load(*path, getenv)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid:\n", *path)
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "  "+line)
		}
		return errors.New("config has errors")
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

func runHashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("hash-password", "Usage: dropgate hash-password < password.txt\n\nReads one password line from stdin and prints its bcrypt hash for a partner's password_hash.\n\n", stderr)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("cannot read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 8 {
		return errors.New("the password must be at least 8 characters")
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, hash)
	return nil
}
