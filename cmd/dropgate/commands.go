package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/server/auth"
	"github.com/dropgate/dropgate/store"
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
	var notes []string
	if err == nil {
		notes, err = checkWorkflowTemplates(context.Background(), cfg)
	}
	for _, n := range notes {
		fmt.Fprintln(stdout, "note: "+n)
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

// checkWorkflowTemplates checks the workflows' send steps against the
// templates stored in the configured database, read-only (the daemon may
// be running). Without a database yet there is nothing to check against.
func checkWorkflowTemplates(ctx context.Context, cfg *config.Config) (notes []string, err error) {
	if len(cfg.Workflows) == 0 {
		return nil, nil
	}
	var st *store.Store
	if cfg.Store.OnPostgres() {
		st, err = store.OpenPostgresReadOnly(ctx, cfg.Store.DSN)
	} else {
		st, err = store.OpenReadOnly(ctx, cfg.DBPath())
	}
	if errors.Is(err, store.ErrNoDatabase) {
		return []string{"the workflows' templates were not checked: there is no database yet (dropgate serve creates it)"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the database to check the workflows' templates: %w", err)
	}
	defer st.Close()
	return cfg.CheckWorkflowTemplates(func(partner, name string) (config.TemplateFacts, error) {
		t, err := st.LatestTemplate(ctx, partner, name)
		if errors.Is(err, store.ErrNotFound) {
			return config.TemplateFacts{}, config.ErrNoTemplate
		}
		if err != nil {
			return config.TemplateFacts{}, err
		}
		return ingest.TemplateFacts(cfg, partner, t)
	})
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
