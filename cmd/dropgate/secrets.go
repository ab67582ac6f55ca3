package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/auth"
)

// Names of the files kept in <data_dir>/secrets.
const (
	adminTokenFile   = "admin-token"
	demoPasswordFile = "demo-password"
)

// bootstrapDefaults fills what a config without partners or admin tokens
// needs to be usable: a generated admin token and a "demo" partner with a
// generated password. Each secret is generated once, printed once, and kept
// in <data_dir>/secrets (0600) so a second start reuses it.
func bootstrapDefaults(cfg *config.Config, stdout io.Writer) error {
	if len(cfg.Admin.Tokens) == 0 {
		tok, fresh, err := loadOrCreateSecret(cfg.SecretsDir(), adminTokenFile)
		if err != nil {
			return err
		}
		cfg.Admin.Tokens = []string{tok}
		if fresh {
			fmt.Fprintf(stdout, "Generated admin token (kept in %s): %s\n", filepath.Join(cfg.SecretsDir(), adminTokenFile), tok)
		}
	}
	if len(cfg.Partners) == 0 {
		pw, fresh, err := loadOrCreateSecret(cfg.SecretsDir(), demoPasswordFile)
		if err != nil {
			return err
		}
		hash, err := auth.HashPassword(pw)
		if err != nil {
			return fmt.Errorf("demo partner: %w", err)
		}
		var channels []string
		for _, ch := range cfg.Channels {
			channels = append(channels, ch.Name)
		}
		cfg.Partners = []config.Partner{{Name: "demo", PasswordHash: hash, Channels: channels}}
		if fresh {
			fmt.Fprintf(stdout, "Generated password for partner \"demo\" (kept in %s): %s\n", filepath.Join(cfg.SecretsDir(), demoPasswordFile), pw)
		}
	}
	return nil
}

// loadOrCreateSecret reads a secret file, or creates it with a new random
// value. fresh reports whether it was just created.
func loadOrCreateSecret(dir, name string) (value string, fresh bool, err error) {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, false, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("cannot read secret: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("cannot create secrets folder: %w", err)
	}
	raw := make([]byte, 24)
	rand.Read(raw)
	value = base64.RawURLEncoding.EncodeToString(raw)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(value+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("cannot write secret: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", false, fmt.Errorf("cannot write secret: %w", err)
	}
	return value, true, nil
}
