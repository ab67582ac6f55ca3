package store

import (
	"context"
	"maps"
	"testing"
)

func TestUnsubscribeEverywhereLeavesEveryListAndSuppresses(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	for _, p := range []string{"acme", "beta"} {
		for _, name := range []string{"news", "offers"} {
			l, err := s.EnsureList(ctx, p, name)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.PutContact(ctx, l, ContactInput{Email: "ana@example.com", Phone: "+351912345678"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Load the suppression cache first: the unsubscribe must keep it current.
	if sup, err := s.IsSuppressed(ctx, "acme", "sms", "+351912345678"); err != nil || sup {
		t.Fatalf("suppressed before: %v %v", sup, err)
	}
	got, err := s.UnsubscribeEverywhere(ctx, "acme", "+351912345678", "STOP", "inbound:sms")
	if err != nil || got.Lists != 2 || !got.Suppressed {
		t.Fatalf("UnsubscribeEverywhere = %+v, %v; want 2 lists and a new suppression", got, err)
	}
	m, err := s.Memberships(ctx, "acme", "ana@example.com")
	if want := map[string]string{"news": Unsubscribed, "offers": Unsubscribed}; err != nil || !maps.Equal(m, want) {
		t.Fatalf("acme memberships = %v, %v; want %v", m, err, want)
	}
	for _, ch := range []string{"sms", "email"} {
		if sup, err := s.IsSuppressed(ctx, "acme", ch, "+351912345678"); err != nil || !sup {
			t.Fatalf("acme %s not suppressed: %v %v", ch, sup, err)
		}
	}
	// The other partner's contact and suppressions are untouched.
	m, err = s.Memberships(ctx, "beta", "+351912345678")
	if want := map[string]string{"news": Subscribed, "offers": Subscribed}; err != nil || !maps.Equal(m, want) {
		t.Fatalf("beta memberships = %v, %v; want %v", m, err, want)
	}
	if sup, _ := s.IsSuppressed(ctx, "beta", "sms", "+351912345678"); sup {
		t.Fatal("beta's recipient was suppressed by acme's opt-out")
	}
	// Again: nothing more to change.
	got, err = s.UnsubscribeEverywhere(ctx, "acme", "+351912345678", "STOP", "inbound:sms")
	if err != nil || got.Lists != 0 || got.Suppressed {
		t.Fatalf("second UnsubscribeEverywhere = %+v, %v; want nothing changed", got, err)
	}
	// An address with no contact is still suppressed.
	got, err = s.UnsubscribeEverywhere(ctx, "acme", "zoe@example.com", "one-click", "unsubscribe")
	if err != nil || got.Lists != 0 || !got.Suppressed {
		t.Fatalf("no contact: %+v, %v", got, err)
	}
}
