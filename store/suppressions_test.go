package store

import (
	"context"
	"errors"
	"testing"
)

// The sender's answer follows every write, whether the list was read
// before or after it, and a channel's suppression leaves other channels.
func TestIsSuppressedFollowsWritesAndChannels(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	check := func(partner, channel, recipient string, want bool) {
		t.Helper()
		got, err := s.IsSuppressed(ctx, partner, channel, recipient)
		if err != nil || got != want {
			t.Errorf("IsSuppressed(%s, %s, %s) = %v, %v; want %v", partner, channel, recipient, got, err, want)
		}
	}
	// Stored before the first question: read when the list is loaded.
	if _, err := s.AddSuppressions(ctx, []Suppression{{Partner: "acme", Recipient: "ana@example.com", Source: "api"}}); err != nil {
		t.Fatal(err)
	}
	check("acme", "email", "ana@example.com", true)
	check("beta", "email", "ana@example.com", false)

	// Stored after: kept current.
	out, err := s.AddSuppressions(ctx, []Suppression{
		{Partner: "acme", Channel: "sms", Recipient: "+351912345678", Source: "api"},
		{Partner: "acme", Recipient: "ana@example.com", Source: "api"},
	})
	if err != nil || !out[0].Added || out[1].Added {
		t.Fatalf("add: %+v %v", out, err)
	}
	check("acme", "sms", "+351912345678", true)
	check("acme", "sms2", "+351912345678", false)

	if err := s.DeleteSuppression(ctx, "beta", out[0].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("another partner's delete: %v", err)
	}
	if err := s.DeleteSuppression(ctx, "acme", out[0].ID); err != nil {
		t.Fatal(err)
	}
	check("acme", "sms", "+351912345678", false)
	if n, err := s.DeleteSuppressionsOf(ctx, "acme", "ana@example.com", ""); n != 1 || err != nil {
		t.Errorf("delete by recipient: %d %v", n, err)
	}
	check("acme", "email", "ana@example.com", false)
}
