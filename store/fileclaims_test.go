package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFileClaimIsTakenOverOnlyOnceItsLeaseRunsOut(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	a := FileClaim{Partner: "acme", Name: "inbox/x.csv", Version: "v1", Node: "A", LeaseUntil: now.Add(30 * time.Second)}
	if out, _, err := s.ClaimFile(ctx, a, now); err != nil || out != ClaimTaken {
		t.Fatalf("first claim: %v, %v", out, err)
	}
	b := a
	b.Node = "B"
	if out, cur, err := s.ClaimFile(ctx, b, now.Add(time.Second)); err != nil || out != ClaimHeld || cur.Node != "A" {
		t.Fatalf("same version, live claim: %v %+v %v", out, cur, err)
	}
	// A's read computed the content's hash: it joins the claim, which
	// another node's claim still tells by version.
	if err := s.SetFileClaimContent(ctx, "acme", "inbox/x.csv", "B", "bb"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFileClaimContent(ctx, "acme", "inbox/x.csv", "A", "aa"); err != nil {
		t.Fatal(err)
	}
	if c, err := s.FileClaimOf(ctx, "acme", "inbox/x.csv"); err != nil || c.Version != "v1" || c.SHA256 != "aa" {
		t.Fatalf("claim after A's read: %+v, %v; want version v1, content aa (B's hash ignored)", c, err)
	}
	b.Version = "v2"
	if out, _, err := s.ClaimFile(ctx, b, now.Add(time.Second)); err != nil || out != ClaimBusy {
		t.Fatalf("other version, live claim: %v, %v", out, err)
	}
	if n, err := s.RenewFileClaims(ctx, "A", now.Add(40*time.Second)); err != nil || n != 1 {
		t.Fatalf("renew: %d, %v", n, err)
	}
	if out, _, _ := s.ClaimFile(ctx, b, now.Add(35*time.Second)); out != ClaimBusy {
		t.Fatalf("renewed claim taken: %v", out)
	}
	exp, err := s.ExpiredFileClaims(ctx, now.Add(41*time.Second), 10)
	if err != nil || len(exp) != 1 || exp[0].Node != "A" {
		t.Fatalf("expired: %+v, %v", exp, err)
	}
	b.LeaseUntil = now.Add(71 * time.Second)
	if out, cur, err := s.ClaimFile(ctx, b, now.Add(41*time.Second)); err != nil || out != ClaimTakenOver || cur.Node != "A" {
		t.Fatalf("takeover: %v %+v %v", out, cur, err)
	}
	// A, back from its stall, cannot release B's claim.
	if err := s.ReleaseFileClaim(ctx, "acme", "inbox/x.csv", "A"); err != nil {
		t.Fatal(err)
	}
	if c, err := s.FileClaimOf(ctx, "acme", "inbox/x.csv"); err != nil || c.Node != "B" {
		t.Fatalf("claim after A's release: %+v, %v", c, err)
	}
	if err := s.ReleaseFileClaim(ctx, "acme", "inbox/x.csv", "B"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FileClaimOf(ctx, "acme", "inbox/x.csv"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("released claim still there: %v", err)
	}
}

// A node that lost its file to another node must not queue it as well: the
// commit checks the claim in its own transaction, and the other node's
// takeover removes what the first had written.
func TestJobCommitFailsOnceTheFileWasTakenOver(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Now()
	fileID, a := lapsedClaim(t, s, now)
	w, err := s.BeginFileJob(ctx, "acme", fileID, "inbox/x.csv", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort(ctx)
	w.HoldClaim("acme", "inbox/x.csv", "A")
	for i := range 5 {
		if err := w.Add(Message{Channel: "sms", Recipient: "+3361234567" + string(rune('0'+i)), Body: "hi", Line: i + 2}); err != nil {
			t.Fatal(err)
		}
	}
	takeOver(t, s, a, now)
	if err := w.Commit(ctx, 5, nil); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("commit after takeover: %v, want ErrClaimLost", err)
	}
	if err := s.AbandonIngestOf(ctx, "acme", "inbox/x.csv"); err != nil {
		t.Fatal(err)
	}
	var jobs, msgs, files int
	s.writer.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs`).Scan(&jobs)
	s.writer.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages`).Scan(&msgs)
	s.writer.QueryRowContext(ctx, `SELECT COUNT(*) FROM files`).Scan(&files)
	if jobs != 0 || msgs != 0 || files != 0 {
		t.Fatalf("left after takeover: %d jobs, %d messages, %d files; want none", jobs, msgs, files)
	}
}

func TestAbandonUnclaimedIngestsLeavesLiveClaimsOnPostgres(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Now()
	for _, name := range []string{"inbox/live.csv", "inbox/dead.csv"} {
		fileID, err := s.CreateFile(ctx, File{Partner: "acme", Name: name, SHA256: name})
		if err != nil {
			t.Fatal(err)
		}
		w, err := s.BeginFileJob(ctx, "acme", fileID, name, 10)
		if err != nil {
			t.Fatal(err)
		}
		w.Add(Message{Channel: "sms", Recipient: "+33612345678", Body: "hi", Line: 2})
		w.finish()
		w.endBulk(ctx)
	}
	if _, _, err := s.ClaimFile(ctx, FileClaim{Partner: "acme", Name: "inbox/live.csv", Node: "other", LeaseUntil: now.Add(time.Minute)}, now); err != nil {
		t.Fatal(err)
	}
	jobs, files, err := s.AbandonUnclaimedIngests(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(1) // the live claim's ingest goes on at its node
	if !onPostgres {
		want = 2 // one node: every claim is its own, from before the stop
	}
	if jobs != want || files != want {
		t.Fatalf("abandoned %d jobs, %d files; want %d of each", jobs, files, want)
	}
}

func TestBansAndFailuresAreShared(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	for i := range 3 {
		n, err := s.AddLoginFailure(ctx, "192.0.2.7", now.Add(time.Duration(i)*time.Second), now.Add(-time.Minute))
		if err != nil || n != i+1 {
			t.Fatalf("failure %d: count %d, %v", i, n, err)
		}
	}
	if n, _ := s.AddLoginFailure(ctx, "192.0.2.7", now.Add(2*time.Minute), now.Add(90*time.Second)); n != 1 {
		t.Fatalf("failures outside the window counted: %d", n)
	}
	s.AddLoginFailure(ctx, "192.0.2.8", now, now.Add(-time.Minute))
	if err := s.PruneLoginFailures(ctx, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var left int
	s.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM defender_failures`).Scan(&left)
	if left != 1 {
		t.Fatalf("%d failures left after pruning, want the one of 192.0.2.7 inside the window", left)
	}
	if err := s.PutBan(ctx, DefenderBan{Addr: "192.0.2.7", Until: now.Add(time.Hour), Failures: 3, Node: "A"}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBan(ctx, DefenderBan{Addr: "192.0.2.7", Until: now.Add(time.Minute), Failures: 3, Node: "B"}, now); err != nil {
		t.Fatal(err)
	}
	b, err := s.BanOf(ctx, "192.0.2.7", now.Add(30*time.Minute))
	if err != nil || !b.Until.Equal(now.Add(time.Hour)) {
		t.Fatalf("ban: %+v, %v (a shorter ban must not shorten a longer one)", b, err)
	}
	if _, err := s.BanOf(ctx, "192.0.2.7", now.Add(2*time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ended ban: %v", err)
	}
	bans, err := s.Bans(ctx, now)
	if err != nil || len(bans) != 1 {
		t.Fatalf("bans: %+v, %v", bans, err)
	}
}

// A node that lost a file to another while it read it cannot reject the
// file over the other's work: the rejection commits only while the claim
// is still the rejecting node's.
func TestRejectFileFailsOnceTheFileWasTakenOver(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Now()
	fileID, a := lapsedClaim(t, s, now)
	takeOver(t, s, a, now)
	bad := []FileError{{Line: 2, Column: "phone", Error: "not a phone number"}}
	if err := s.RejectFile(WithClaimFence(ctx, "acme", "inbox/x.csv", "A"), fileID, "rejected by A", 2, bad); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("reject after takeover: %v, want ErrClaimLost", err)
	}
	f, err := s.File(ctx, fileID)
	if err != nil || f.Status == FileRejected {
		t.Fatalf("file after the lost node's rejection: status %q (%v), want it untouched", f.Status, err)
	}
	if err := s.RejectFile(WithClaimFence(ctx, "acme", "inbox/x.csv", "B"), fileID, "rejected by B", 2, bad); err != nil {
		t.Fatalf("reject by the claim's holder: %v", err)
	}
	if f, _ := s.File(ctx, fileID); f.Status != FileRejected || f.Error != "rejected by B" {
		t.Fatalf("file after the holder's rejection: %q %q", f.Status, f.Error)
	}
}

// lapsedClaim makes file inbox/x.csv of acme and node A's claim on it,
// lapsed at now.
func lapsedClaim(t *testing.T, s *Store, now time.Time) (int64, FileClaim) {
	t.Helper()
	ctx := context.Background()
	fileID, err := s.CreateFile(ctx, File{Partner: "acme", Name: "inbox/x.csv", SHA256: "aa"})
	if err != nil {
		t.Fatal(err)
	}
	a := FileClaim{Partner: "acme", Name: "inbox/x.csv", Version: "v1", Node: "A", LeaseUntil: now.Add(-time.Second)}
	if _, _, err := s.ClaimFile(ctx, a, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	return fileID, a
}

// takeOver makes node B take a's lapsed claim over at now.
func takeOver(t *testing.T, s *Store, a FileClaim, now time.Time) {
	t.Helper()
	b := a
	b.Node, b.LeaseUntil = "B", now.Add(time.Minute)
	if out, _, err := s.ClaimFile(context.Background(), b, now); err != nil || out != ClaimTakenOver {
		t.Fatalf("takeover: %v, %v", out, err)
	}
}
