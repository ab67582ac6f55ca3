package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// Nodes sharing one PostgreSQL database share the partner homes too (a
// shared folder): every node's watcher may see a file, every node's server
// may take its upload, and exactly one node must read it. Before reading a
// file a node claims it in the database, by partner, path and version
// (fileVersion: what tells this upload from another of the same name
// without reading it, so the file is still read once), adds the content
// hash to the claim once its read computed it, and holds the claim (renewed by claimLoop) until the file is
// queued or rejected and archived; its job commits only while the claim is
// still its own (store.JobWriter.HoldClaim). A node that dies leaves its
// claim to expire; another node finds it (claimLoop), takes it over,
// removes what the dead node's ingest left and reads the file again.
//
// One node on SQLite goes the same way: its claims are one small row per
// file, nobody else's.

// defaultClaimLease is how long a claim holds without renewal: a node
// renews its claims every third of it, and a node that stopped renewing
// for this long is taken to be gone.
const defaultClaimLease = 30 * time.Second

// fileClaims is the Ingester's side of the claims.
type fileClaims struct {
	node  string
	lease time.Duration

	mu       sync.Mutex
	held     map[workItem]bool      // claims this node holds now, by partner and claim name
	deferred map[workItem]time.Time // files another node holds, to try again after the time
}

// newNodeID names a node for its claims: the host, the process and a
// random part, so a node restarted on the same host is a new node (its old
// claims expire like any dead node's).
func newNodeID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Node is this ingester's node id in the file claims.
func (in *Ingester) Node() string { return in.claims.node }

// claimName is the name a file is claimed under: a marker and its data
// file (complete = marker) are one claim, the data file's, since either
// may start the ingest of both.
func claimName(p *partner, rel string) string {
	if p.cfg.Complete == config.CompleteMarker && isMarker(rel) {
		return strings.TrimSuffix(rel, config.MarkerSuffix)
	}
	return rel
}

// claim claims an item before it is read. ok false means another node
// holds it (or the claim could not be made on a shared database): the
// item is dropped now, and taken again when that node is done or gone.
// release drops the claim once the item is processed.
func (in *Ingester) claim(ctx context.Context, p *partner, it workItem, log *slog.Logger) (release func(), ok bool) {
	name := claimName(p, it.rel)
	key := workItem{partner: p.cfg.Name, rel: name}
	// A file gone or unreadable is claimed with no version: the claim
	// still takes over a dead node's, and the ingest finds nothing to read.
	version := fileVersion(filepath.Join(p.home, filepath.FromSlash(name)))
	now := in.now()
	c := store.FileClaim{Partner: p.cfg.Name, Name: name, Version: version, Node: in.claims.node, LeaseUntil: now.Add(in.claims.lease)}
	outcome, cur, err := in.st.ClaimFile(ctx, c, now)
	switch {
	case err != nil && !in.st.Postgres():
		// Alone on SQLite nobody else can read the file: go on unclaimed.
		log.Warn("cannot claim the file; reading it anyway (one node)", "err", err)
		return func() {}, true
	case err != nil:
		if ctx.Err() == nil {
			log.Error("cannot claim the file; trying again shortly", "err", err)
			in.deferItem(it, now.Add(in.claims.lease/3))
		}
		return nil, false
	case outcome == store.ClaimHeld:
		log.Debug("file is being read by another node", "node", cur.Node)
		return nil, false
	case outcome == store.ClaimBusy:
		log.Info("an earlier upload of this name is being read by another node; this one is taken once it is done", "node", cur.Node)
		in.deferItem(it, now.Add(in.claims.lease/3))
		return nil, false
	case outcome == store.ClaimTakenOver:
		log.Warn("taking over a file from a node that stopped while reading it", "node", cur.Node)
		if err := in.st.AbandonIngestOf(ctx, p.cfg.Name, name); err != nil {
			log.Error("cannot remove what the stopped node left of its ingest; trying again shortly", "err", err)
			in.st.ReleaseFileClaim(context.WithoutCancel(ctx), p.cfg.Name, name, in.claims.node)
			in.deferItem(it, now.Add(in.claims.lease/3))
			return nil, false
		}
	}
	in.claims.mu.Lock()
	in.claims.held[key] = true
	delete(in.claims.deferred, it)
	in.claims.mu.Unlock()
	return func() {
		in.claims.mu.Lock()
		delete(in.claims.held, key)
		in.claims.mu.Unlock()
		if err := in.st.ReleaseFileClaim(context.WithoutCancel(ctx), p.cfg.Name, name, in.claims.node); err != nil {
			log.Error("cannot release the file's claim; it expires on its own", "err", err)
		}
	}, true
}

// holdClaim makes a file job's commit depend on this node still holding
// the file's claim (when it holds one).
func (in *Ingester) holdClaim(w *store.JobWriter, p *partner, rel string) {
	name := claimName(p, rel)
	in.claims.mu.Lock()
	held := in.claims.held[workItem{partner: p.cfg.Name, rel: name}]
	in.claims.mu.Unlock()
	if held {
		w.HoldClaim(p.cfg.Name, name, in.claims.node)
	}
}

// claimFence returns ctx carrying this node's claim on the file (when it
// holds one), so that the transaction applying a suppress/, lists/ or
// events/ file commits only while the file is still this node's
// (store.WithClaimFence): a node that stalled past its lease must not
// apply a file another node took over.
func (in *Ingester) claimFence(ctx context.Context, p *partner, rel string) context.Context {
	name := claimName(p, rel)
	in.claims.mu.Lock()
	held := in.claims.held[workItem{partner: p.cfg.Name, rel: name}]
	in.claims.mu.Unlock()
	if !held {
		return ctx
	}
	return store.WithClaimFence(ctx, p.cfg.Name, name, in.claims.node)
}

// deferItem keeps an item another node holds, to queue it again at when.
func (in *Ingester) deferItem(it workItem, when time.Time) {
	in.claims.mu.Lock()
	in.claims.deferred[it] = when
	in.claims.mu.Unlock()
}

// claimLoop renews this node's claims, takes over the files of nodes whose
// claims expired and queues again the files deferred for another node's,
// every third of the lease, until ctx ends.
func (in *Ingester) claimLoop(ctx context.Context) {
	t := time.NewTicker(max(in.claims.lease/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		in.claimTick(ctx)
	}
}

// claimTick is one round of claimLoop.
func (in *Ingester) claimTick(ctx context.Context) {
	now := in.now()
	in.claims.mu.Lock()
	holding := len(in.claims.held) > 0
	var due []workItem
	for it, when := range in.claims.deferred {
		if !now.Before(when) {
			due = append(due, it)
			delete(in.claims.deferred, it)
		}
	}
	in.claims.mu.Unlock()
	if holding {
		if _, err := in.st.RenewFileClaims(ctx, in.claims.node, now.Add(in.claims.lease)); err != nil && ctx.Err() == nil {
			in.log.Error("cannot renew file claims; other nodes may take this node's files over", "err", err)
		}
	}
	for _, it := range due {
		in.push(it, arrivedUnknown)
	}
	expired, err := in.st.ExpiredFileClaims(ctx, now, 100)
	if err != nil {
		if ctx.Err() == nil {
			in.log.Error("cannot look for files left by stopped nodes", "err", err)
		}
		return
	}
	for _, c := range expired {
		p := in.partners[c.Partner]
		if p == nil {
			continue // another node's partner, or a report's claim (results.go)
		}
		if _, ok := cleanRel(c.Name); !ok {
			continue
		}
		if in.push(workItem{partner: c.Partner, rel: c.Name}, arrivedUnknown) {
			in.log.Info("found a file left by a stopped node", "partner", c.Partner, "file", c.Name, "node", c.Node)
		}
	}
}

// fileVersion tells one upload of the file at abs from another of the
// same name without reading it: its size, modification time (in
// nanoseconds) and inode. A new upload through our servers is a new file
// renamed into place (a new inode, a new time); one written in place
// changes its time. The device is left out: on shared storage each node
// numbers the mount its own way, while the inode is the server's. ""
// when the file cannot be looked at.
func fileVersion(abs string) string {
	fi, err := os.Stat(abs)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("size=%d mtime=%d ino=%d", fi.Size(), fi.ModTime().UnixNano(), inodeOf(fi))
}

// claimContent records the content's hash in this node's claim on the
// file, once the file's read computed it (when the node holds a claim).
func (in *Ingester) claimContent(ctx context.Context, p *partner, rel, sum string) {
	name := claimName(p, rel)
	in.claims.mu.Lock()
	held := in.claims.held[workItem{partner: p.cfg.Name, rel: name}]
	in.claims.mu.Unlock()
	if !held {
		return
	}
	if err := in.st.SetFileClaimContent(ctx, p.cfg.Name, name, in.claims.node, sum); err != nil && ctx.Err() == nil {
		in.log.Warn("cannot record the file's content in its claim", "partner", p.cfg.Name, "file", name, "err", err)
	}
}

// claimReport claims the writing of a job's result report, so that of
// the nodes listing the job as ended one writes it; ok is false when
// another node holds it or wrote it already. A report's claim is named
// reports/job-<id>: no file of a home is claimed under reports/.
func (in *Ingester) claimReport(ctx context.Context, j store.Job) (release func(), ok bool) {
	name := fmt.Sprintf("%s/job-%d", config.ReportsDir, j.ID)
	now := in.now()
	c := store.FileClaim{Partner: j.Partner, Name: name, Node: in.claims.node, LeaseUntil: now.Add(in.claims.lease)}
	outcome, _, err := in.st.ClaimFile(ctx, c, now)
	switch {
	case err != nil && !in.st.Postgres():
		return func() {}, true // alone: nobody else writes it
	case err != nil:
		if ctx.Err() == nil {
			in.log.Error("cannot claim a result report; trying again shortly", "job", j.ID, "err", err)
		}
		return nil, false
	case outcome != store.ClaimTaken && outcome != store.ClaimTakenOver:
		return nil, false
	}
	key := workItem{partner: j.Partner, rel: name}
	in.claims.mu.Lock()
	in.claims.held[key] = true // renewed while a long report is written
	in.claims.mu.Unlock()
	release = func() {
		in.claims.mu.Lock()
		delete(in.claims.held, key)
		in.claims.mu.Unlock()
		if err := in.st.ReleaseFileClaim(context.WithoutCancel(ctx), j.Partner, name, in.claims.node); err != nil {
			in.log.Error("cannot release a result report's claim; it expires on its own", "job", j.ID, "err", err)
		}
	}
	// Listed before the claim: another node may have written it since.
	if done, err := in.st.JobReported(ctx, j.ID); err != nil || done {
		release()
		return nil, false
	}
	return release, true
}

// stillClaimed fails with store.ErrClaimLost when this node held the
// file's claim and another node has since taken it over: a node that
// stalled past its lease must not write the reports or archive the file
// the other node is handling.
func (in *Ingester) stillClaimed(ctx context.Context, p *partner, rel string) error {
	name := claimName(p, rel)
	in.claims.mu.Lock()
	held := in.claims.held[workItem{partner: p.cfg.Name, rel: name}]
	in.claims.mu.Unlock()
	if !held {
		return nil
	}
	c, err := in.st.FileClaimOf(ctx, p.cfg.Name, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err != nil || c.Node != in.claims.node {
		return fmt.Errorf("cannot finish %s: %w", name, store.ErrClaimLost)
	}
	return nil
}
