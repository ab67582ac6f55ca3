package store

import (
	"context"
	"crypto/rand"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// queueChannelPrefix names the PostgreSQL notification channel on which
// a node tells the others that messages became runnable. Notifications
// reach every session of the database, whatever its schema: the channel
// is the prefix and the store's schema, so that dropgates kept in other
// schemas of the database (and the tests, a schema each) do not wake each
// other.
const queueChannelPrefix = "dropgate_queue."

// pgNotify sends the NOTIFYs of one node: a commit that may have made
// messages runnable (jobsQueued) sends one, so every node's sender
// starts on them at once instead of at its next poll. A burst of commits
// sends one NOTIFY in flight and at most one more after it.
type pgNotify struct {
	once    sync.Once
	token   string      // this store's payload, so its own NOTIFYs do not wake it twice
	pending atomic.Bool // a NOTIFY is due and not yet sent
	channel atomic.Pointer[string]
}

// queueChannel returns the store's notification channel (see
// queueChannelPrefix), asking for its schema the first time.
func (s *Store) queueChannel(ctx context.Context) (string, error) {
	if ch := s.notify.channel.Load(); ch != nil {
		return *ch, nil
	}
	var schema string
	if err := s.reader.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", fmt.Errorf("cannot read the schema: %w", err)
	}
	ch := queueChannelPrefix + schema
	s.notify.channel.Store(&ch)
	return ch, nil
}

// notifyToken returns this store's NOTIFY payload.
func (s *Store) notifyToken() string {
	s.notify.once.Do(func() {
		b := make([]byte, 8)
		rand.Read(b)
		s.notify.token = hex.EncodeToString(b)
	})
	return s.notify.token
}

// notifyQueued tells the other nodes, without blocking the committing
// goroutine, that messages may have become runnable.
func (s *Store) notifyQueued() {
	if !s.notify.pending.CompareAndSwap(false, true) {
		return // the one due goes after this commit
	}
	token := s.notifyToken()
	go func() {
		s.notify.pending.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// A lost NOTIFY costs the other nodes a poll interval, nothing more.
		if ch, err := s.queueChannel(ctx); err == nil {
			s.reader.ExecContext(ctx, `SELECT pg_notify(?, ?)`, ch, token)
		}
	}()
}

// ListenQueue wakes this node's OnJobsQueued functions whenever another
// node commits messages that may have become runnable (LISTEN/NOTIFY on
// PostgreSQL), until ctx ends; it returns nil then. It listens on a
// connection of its own, reconnecting after a loss (and waking the
// functions once, for what the gap may have hidden). ready, when not nil,
// is called each time the LISTEN is in place. On SQLite, with one node,
// it only waits for ctx.
func (s *Store) ListenQueue(ctx context.Context, ready func()) error {
	if !s.pg {
		<-ctx.Done()
		return nil
	}
	// The listening connection is one more than the readers' pool had.
	n := s.reader.Stats().MaxOpenConnections
	s.reader.SetMaxOpenConns(n + 1)
	defer s.reader.SetMaxOpenConns(n)
	token := s.notifyToken()
	for wait := 100 * time.Millisecond; ctx.Err() == nil; {
		err := s.listenOnce(ctx, token, ready)
		if ctx.Err() != nil {
			break
		}
		_ = err // reconnect after a pause: the poll interval covers the gap
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
		s.runQueuedHooks()
	}
	return nil
}

// listenOnce listens on one connection until it fails or ctx ends.
func (s *Store) listenOnce(ctx context.Context, token string, ready func()) error {
	ch, err := s.queueChannel(ctx)
	if err != nil {
		return err
	}
	conn, err := s.reader.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return pgxConn(ctx, conn, func(pc *pgx.Conn) error {
		if _, err := pc.Exec(ctx, `LISTEN `+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("cannot listen for queued jobs: %w", err)
		}
		if ready != nil {
			ready()
		}
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				// The connection still listens: never give it back to the pool.
				return driver.ErrBadConn
			}
			if n.Payload != token {
				s.runQueuedHooks()
			}
		}
	})
}
