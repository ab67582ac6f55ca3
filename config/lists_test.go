package config

import (
	"strings"
	"testing"
)

// [[partner.list]] sets a list's mode; bad names, modes and repeats are
// errors naming the field.
func TestPartnerListSettings(t *testing.T) {
	cfg := parseValid(t, `
[[partner]]
name = "acme"
channels = ["email"]
[[partner.list]]
name = "vip"
mode = "replace"
[[partner.list]]
name = "News.2026"
`, nil)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p := cfg.Partners[0]
	if p.ListMode("vip") != ListModeReplace || p.ListMode("News.2026") != ListModeUpsert || p.ListMode("other") != ListModeUpsert {
		t.Errorf("modes: %q %q %q", p.ListMode("vip"), p.ListMode("News.2026"), p.ListMode("other"))
	}
	cfg.Partners[0].Lists = []PartnerList{{Name: "../x"}, {Name: "vip", Mode: "merge"}, {Name: "vip"}}
	err := cfg.Validate()
	for _, want := range []string{"partner[0].list[0].name", "partner[0].list[1].mode", "partner[0].list[2].name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no error for %s: %v", want, err)
		}
	}
}
