package config

import (
	"strings"
	"testing"
)

func TestStoreSectionChoosesTheEngineAndExpandsTheDSN(t *testing.T) {
	env := map[string]string{"PGPASSWORD": "s3cret"}
	cfg, err := Parse(strings.NewReader("[store]\ndriver = \"postgres\"\ndsn = \"postgres://dropgate:${PGPASSWORD}@127.0.0.1:5432/dropgate\"\n"),
		func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if !cfg.Store.OnPostgres() || cfg.Store.DSN != "postgres://dropgate:s3cret@127.0.0.1:5432/dropgate" {
		t.Fatalf("store = %+v", cfg.Store)
	}
	if Default().Store.OnPostgres() {
		t.Fatal("the default store is PostgreSQL, want SQLite")
	}
}

func TestStoreSectionRejectsWithItsFieldAndKeepsThePasswordOut(t *testing.T) {
	for _, c := range []struct{ toml, field, not string }{
		{"driver = \"mysql\"", "store.driver", ""},
		{"driver = \"postgres\"", "store.dsn", ""},
		{"driver = \"postgres\"\ndsn = \"postgres://u:hunter2@h:99999/db\"", "store.dsn", "hunter2"},
		{"dsn = \"postgres://u@h/db\"", "store.dsn", ""},
	} {
		cfg, err := Parse(strings.NewReader("[store]\n"+c.toml+"\n"), nil)
		if err != nil {
			t.Fatalf("%s: parse: %v", c.toml, err)
		}
		err = cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: Validate = %v, want a %s error", c.toml, err, c.field)
		}
		if c.not != "" && err != nil && strings.Contains(err.Error(), c.not) {
			t.Errorf("%s: the error shows the password: %v", c.toml, err)
		}
	}
}

func TestNodesOnPostgresKeepTheirOwnDeliveryLogs(t *testing.T) {
	cfg := Default()
	cfg.DataDir = "/srv/dropgate"
	if got := cfg.DeliveryLogDir(); got != "/srv/dropgate/deliveries" {
		t.Fatalf("SQLite: %s", got)
	}
	cfg.Store = StoreConfig{Driver: StorePostgres, DSN: "postgres://h/db", Node: "node-a"}
	a := cfg.DeliveryLogDir()
	cfg.Store.Node = "node-b"
	if b := cfg.DeliveryLogDir(); a != "/srv/dropgate/deliveries/node-a" || b != "/srv/dropgate/deliveries/node-b" {
		t.Fatalf("two nodes on one data_dir: %s and %s", a, b)
	}
	defer func(h func() (string, error)) { hostname = h }(hostname)
	hostname = func() (string, error) { return "box7", nil }
	cfg.Store.Node = ""
	if got := cfg.DeliveryLogDir(); got != "/srv/dropgate/deliveries/box7" {
		t.Fatalf("default node name: %s", got)
	}
	for _, c := range []struct{ toml, field string }{
		{"driver = \"postgres\"\ndsn = \"postgres://h/db\"\nnode = \"../x\"", "store.node"},
		{"node = \"a\"", "store.node"},
	} {
		cfg, err := Parse(strings.NewReader("[store]\n"+c.toml+"\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: Validate = %v, want a %s error", c.toml, err, c.field)
		}
	}
}
