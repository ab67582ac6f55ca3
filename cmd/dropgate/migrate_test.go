package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/internal/pgtest"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

// `dropgate migrate` copies a node's SQLite database into an empty
// PostgreSQL one and prints the counts; run again, it refuses the database
// it filled.
func TestMigrateCopiesSQLiteIntoEmptyPostgres(t *testing.T) {
	storetest.PostgresPassOnly(t)
	ctx := context.Background()
	dir := t.TempDir()
	src, err := store.Open(ctx, filepath.Join(dir, "dropgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.SaveTemplate(ctx, store.Template{Partner: "acme", Name: "welcome", Channel: "sms", Format: "text", Body: "Hi", Source: "channel: sms\n---\nHi\n"}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.AddSuppressions(ctx, []store.Suppression{{Partner: "acme", Channel: "sms", Recipient: "+351912345678", Source: "api"}}); err != nil {
		t.Fatal(err)
	}
	src.Close()
	dsn := pgtest.Schema(t)
	var out, errs bytes.Buffer
	args := []string{"migrate", "--to", "postgres", "--dsn", dsn, "--data", dir}
	if err := run(ctx, args, os.Getenv, nil, &out, &errs); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errs.String())
	}
	for _, want := range []string{"templates 1 1", "suppressions 1 1", "every count matches"} {
		if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	dst, err := store.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if tmpl, err := dst.LatestTemplate(ctx, "acme", "welcome"); err != nil || tmpl.Body != "Hi" {
		t.Fatalf("template in PostgreSQL: %+v, %v", tmpl, err)
	}
	out.Reset()
	err = run(ctx, args, os.Getenv, nil, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second migrate: %v, want a refusal of the filled database", err)
	}
	err = run(ctx, []string{"migrate", "--to", "postgres", "--dsn", dsn, "--data", t.TempDir()}, os.Getenv, nil, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "no SQLite database") {
		t.Fatalf("migrate of a missing database: %v", err)
	}
}
