package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The contact and list reads answer alike on both engines: counts, pages,
// memberships by name, the send's raw member reads, removal.
func TestContactAndListReads(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	news, err := s.EnsureList(ctx, "acme", "news")
	if err != nil {
		t.Fatal(err)
	}
	vip, created, err := s.CreateList(ctx, "acme", "vip")
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if again, created, err := s.CreateList(ctx, "acme", "vip"); err != nil || created || again.ID != vip.ID {
		t.Fatalf("create again: %+v %v %v", again, created, err)
	}
	ana, _, err := s.PutContact(ctx, news, ContactInput{Email: "ana@example.com", Phone: "+351912345678", Attributes: map[string]any{"city": "Porto"}})
	if err != nil {
		t.Fatal(err)
	}
	bia, _, err := s.PutContact(ctx, news, ContactInput{Ref: "b-1", Status: Unsubscribed})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutContact(ctx, vip, ContactInput{Email: "ana@example.com"}); err != nil {
		t.Fatal(err)
	}
	lists, err := s.Lists(ctx, "acme")
	if err != nil || len(lists) != 2 || lists[0].Name != "news" || lists[0].Subscribed != 1 || lists[0].Unsubscribed != 1 || lists[1].Subscribed != 1 {
		t.Fatalf("lists %+v %v", lists, err)
	}
	if all, err := s.Lists(ctx, ""); err != nil || len(all) != 2 {
		t.Fatalf("every partner's lists %+v %v", all, err)
	}
	members, err := s.ListMembers(ctx, news.ID, Subscribed, 0, 10)
	if err != nil || len(members) != 1 || members[0].ID != ana.ID || members[0].Phone != "+351912345678" || members[0].Status != Subscribed {
		t.Fatalf("members %+v %v", members, err)
	}
	if page, err := s.ListMembers(ctx, news.ID, "", ana.ID, 10); err != nil || len(page) != 1 || page[0].ID != bia.ID {
		t.Fatalf("page after ana %+v %v", page, err)
	}
	found, err := s.FindContact(ctx, "acme", "", "+351912345678", "")
	if err != nil || found.ID != ana.ID || string(found.Attributes) != `{"city":"Porto"}` {
		t.Fatalf("find %+v %v", found, err)
	}
	if _, err := s.FindContact(ctx, "beta", "ana@example.com", "", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another partner's contact: %v", err)
	}
	ms, err := s.ContactLists(ctx, ana.ID)
	if err != nil || len(ms) != 2 || ms[0].List != "news" || ms[1].List != "vip" {
		t.Fatalf("contact lists %+v %v", ms, err)
	}
	if byName, err := s.Memberships(ctx, "acme", "ana@example.com"); err != nil || byName["news"] != Subscribed || byName["vip"] != Subscribed {
		t.Fatalf("memberships %v %v", byName, err)
	}
	if attrs, err := s.ContactAttributes(ctx, &Event{Partner: "acme", Phone: "+351912345678"}); err != nil || attrs["city"] != "Porto" {
		t.Fatalf("attributes %v %v", attrs, err)
	}
	lo, hi, err := s.MemberRange(ctx, news.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.SubscribedMembers(ctx, news.ID, lo, hi, MemberEmail|MemberRef, nil)
	if err != nil || len(got) != 1 || got[0].ContactID != ana.ID || got[0].Email != "ana@example.com" || got[0].Phone != "" ||
		string(got[0].Attributes) != `{"city":"Porto"}` {
		t.Fatalf("subscribed members %+v %v", got, err)
	}
	if err := s.RemoveMember(ctx, vip.ID, ana.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveMember(ctx, vip.ID, ana.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second removal: %v", err)
	}
	if li, err := s.ListInfoByName(ctx, "acme", "vip"); err != nil || li.Subscribed != 0 {
		t.Fatalf("vip %+v %v", li, err)
	}
}

// Suppressions page by partner, recipient and channel, and go by id or by
// recipient.
func TestSuppressionPagesAndDeletes(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	out, err := s.AddSuppressions(ctx, []Suppression{
		{Partner: "acme", Recipient: "ana@example.com", Source: "api"},
		{Partner: "acme", Channel: "sms", Recipient: "+351912345678", Reason: "stop", Source: "api"},
		{Partner: "beta", Recipient: "ana@example.com", Source: "api"},
	})
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.SuppressionPage(ctx, "acme", "", "", 0, 10)
	if err != nil || len(page) != 2 || page[1].Reason != "stop" || page[1].Channel != "sms" {
		t.Fatalf("acme page %+v %v", page, err)
	}
	if page, err := s.SuppressionPage(ctx, "", "ana@example.com", "", out[0].ID, 10); err != nil || len(page) != 1 || page[0].Partner != "beta" {
		t.Fatalf("ana after the first %+v %v", page, err)
	}
	if err := s.DeleteSuppression(ctx, "acme", out[1].ID); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteSuppressionsOf(ctx, "beta", "ana@example.com", ""); err != nil || n != 1 {
		t.Fatalf("delete of beta's ana: %d %v", n, err)
	}
	if sup, err := s.IsSuppressed(ctx, "acme", "sms", "+351912345678"); err != nil || sup {
		t.Fatalf("deleted suppression still holds: %v %v", sup, err)
	}
}

// A run's life through the store without messages: started by an event,
// moved on a step, listed, cancelled by hand with the step recorded.
func TestRunReadsAndMovesWithoutMessages(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	res, err := s.AcceptEvents(ctx, []EventWrite{{Event: Event{Partner: "acme", EventID: "e1", Name: "signup", Email: "ana@example.com",
		Key: "k1", Data: map[string]string{"plan": "pro"}, Source: EventFromAPI},
		Starts: []RunStart{{Workflow: "welcome", Step: 0, DueAt: now}}}}, now)
	if err != nil {
		t.Fatal(err)
	}
	id := res[0].Started[0]
	if due, ok, err := s.NextRunDue(ctx); err != nil || !ok || !due.Equal(now) {
		t.Fatalf("next due %v %v %v", due, ok, err)
	}
	later := now.Add(time.Hour)
	if _, err := s.AdvanceRuns(ctx, []RunAdvance{{ID: id, Partner: "acme", From: 0, To: 1, Status: RunWaiting, DueAt: later,
		Steps: []RunStep{{Step: 0, Outcome: StepWaiting}}}}, now); err != nil {
		t.Fatal(err)
	}
	// A second advance from the step it left finds the run moved.
	if _, err := s.AdvanceRuns(ctx, []RunAdvance{{ID: id, Partner: "acme", From: 0, To: 1, Status: RunDone}}, now); !errors.Is(err, ErrRunMoved) {
		t.Fatalf("stale advance: %v", err)
	}
	runs, err := s.ListRuns(ctx, RunFilter{Partner: "acme", Workflow: "welcome", Email: "ana@example.com", Limit: 10})
	if err != nil || len(runs) != 1 || runs[0].Step != 1 || !runs[0].DueAt.Equal(later) || runs[0].Data["plan"] != "pro" {
		t.Fatalf("runs %+v %v", runs, err)
	}
	r, changed, err := s.CancelRun(ctx, "acme", "welcome", id, now)
	if err != nil || !changed || r.Status != RunCancelled {
		t.Fatalf("cancel %+v %v %v", r, changed, err)
	}
	steps, err := s.StepsOfRun(ctx, id)
	if err != nil || len(steps) != 2 || steps[0].Outcome != StepWaiting || steps[1].Outcome != StepCancelled || steps[1].Step != 1 {
		t.Fatalf("steps %+v %v", steps, err)
	}
	evs, err := s.EventsOfRun(ctx, r)
	if err != nil || len(evs) != 1 || evs[0].EventID != "e1" || evs[0].Data["plan"] != "pro" {
		t.Fatalf("events %+v %v", evs, err)
	}
	if _, ok, err := s.NextRunDue(ctx); err != nil || ok {
		t.Fatalf("a run waits still: %v %v", ok, err)
	}
}
