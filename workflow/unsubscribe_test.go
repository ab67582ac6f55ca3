package workflow

import (
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
)

// A contact who unsubscribes (the one-click link, an SMS STOP) while a
// run waits ends that run at its next step: unsubscribing suppresses the
// address, which every step checks.
func TestUnsubscribedContactEndsItsRun(t *testing.T) {
	e := newEnv(t, cartWorkflow, start0)
	list, err := e.st.EnsureList(e.ctx, "acme", "news")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.st.PutContact(e.ctx, list, store.ContactInput{Email: "ana@example.com"}); err != nil {
		t.Fatal(err)
	}
	run := e.event("cart_abandoned", "ana@example.com", "cart-1").Started[0]
	other := e.event("cart_abandoned", "bob@example.com", "cart-2").Started[0]
	if _, err := e.st.UnsubscribeEverywhere(e.ctx, "acme", "ana@example.com", "one-click", "test"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	e.waitRun(run, store.RunSuppressed)
	e.waitRun(other, store.RunDone)
	if n := e.messages(); n != 1 {
		t.Fatalf("%d messages, want 1 (to bob only)", n)
	}
}
