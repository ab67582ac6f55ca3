package segment

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var fixed = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func TestMatchEvaluatesTheIssueExample(t *testing.T) {
	e, err := Compile(`city == "Lisbon" && orders > 2 && last_order_at > now() - duration("720h")`, Options{Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		values map[string]any
		want   bool
	}{
		{map[string]any{"city": "Lisbon", "orders": int64(3), "last_order_at": fixed.Add(-24 * time.Hour)}, true},
		{map[string]any{"city": "Lisbon", "orders": int64(3), "last_order_at": fixed.Add(-31 * 24 * time.Hour)}, false},
		{map[string]any{"city": "Porto", "orders": int64(9), "last_order_at": fixed}, false},
		{map[string]any{"city": "Lisbon", "orders": 2.5, "last_order_at": fixed}, true},
	}
	for i, c := range cases {
		got, err := e.Match(c.values)
		if err != nil || got != c.want {
			t.Errorf("case %d: Match = %v, %v; want %v", i, got, err, c.want)
		}
	}
}

func TestMatchFailsOnAMissingAttributeUsedAsANumber(t *testing.T) {
	e, err := Compile(`orders > 2`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Match(map[string]any{"city": "Lisbon"}); err == nil {
		t.Fatal("a missing attribute compared with a number matched without error")
	}
	if _, err := Compile(`city`, Options{}); err != nil {
		t.Fatal(err) // not known to be a non-boolean until run
	}
	e, _ = Compile(`city`, Options{})
	if _, err := e.Match(map[string]any{"city": "Lisbon"}); err == nil {
		t.Fatal("a string result matched")
	}
}

func TestCompileErrorsHaveAPosition(t *testing.T) {
	cases := []struct {
		src          string
		line, column int
		message      string
	}{
		{`orders >`, 1, 8, "unexpected token EOF"},
		{"city == \"Lisbon\" &&\n  orders >> 2", 2, 11, ""},
		{`city == "Lisbon" && exec("rm")`, 1, 21, "unknown function exec()"},
		{`1 + 2`, 1, 1, "bool"},
	}
	for _, c := range cases {
		_, err := Compile(c.src, Options{})
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("%q: error %v is not a *segment.Error", c.src, err)
			continue
		}
		if se.Line != c.line || (c.column != 0 && se.Column != c.column) || !strings.Contains(se.Message, c.message) {
			t.Errorf("%q: got line %d column %d %q; want line %d column %d containing %q", c.src, se.Line, se.Column, se.Message, c.line, c.column, c.message)
		}
	}
}

func TestExpensiveExpressionsAreRefused(t *testing.T) {
	if _, err := Compile(strings.Repeat("a && ", MaxLength), Options{}); err == nil {
		t.Error("an expression longer than MaxLength compiled")
	}
	for _, src := range []string{`len(repeat("x", 1000000000)) > 0`, `len(1..1000000000) > 0`} {
		e, err := Compile(src, Options{})
		if err != nil {
			continue // refused at compile time: fine
		}
		if _, err := e.Match(map[string]any{}); err == nil {
			t.Errorf("%q ran to the end; it should be refused or stopped by a budget", src)
		}
	}
}
