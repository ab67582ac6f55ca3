package ftp

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"

	"github.com/dropgate/dropgate/server/sessions"
)

// controlListener hands ftpserverlib control connections that tell their
// session about every reply written. At stop, a session whose upload has
// just been closed is closed only once the reply to it (226, or the error)
// is out, so the client learns the upload succeeded instead of seeing the
// connection drop. ftpserverlib has no hook after a reply, and with TLS the
// bytes are encrypted, so a reply is "a write after the transfer ended":
// ftpserverlib flushes each reply line in one write.
type controlListener struct {
	net.Listener
	// plain is false for implicit TLS, where the control stream is TLS
	// from its first byte.
	plain bool

	mu    sync.Mutex
	conns map[string]*controlConn // by remote address, unique per live TCP connection
}

func newControlListener(ln net.Listener, plain bool) *controlListener {
	return &controlListener{Listener: ln, plain: plain, conns: map[string]*controlConn{}}
}

func (l *controlListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	keepUrgentInline(c)
	cc := &controlConn{Conn: c, l: l, key: c.RemoteAddr().String()}
	cc.plain.Store(l.plain)
	l.mu.Lock()
	l.conns[cc.key] = cc
	l.mu.Unlock()
	return cc, nil
}

// attach ties the control connection from remote to its session.
// ftpserverlib gives the driver the client's address, not our connection.
func (l *controlListener) attach(remote net.Addr, sess *sessions.Session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.conns[remote.String()]; c != nil {
		c.sess.Store(sess)
	}
}

type controlConn struct {
	net.Conn
	l    *controlListener
	key  string
	sess atomic.Pointer[sessions.Session]
	once sync.Once

	// plain holds until the control connection turns to TLS (AUTH TLS
	// answered with 234): only a plain stream is filtered for Telnet.
	plain  atomic.Bool
	telnet telnetFilter // used by ftpserverlib's one reading goroutine
}

// Read hands ftpserverlib the client's commands without Telnet sequences.
func (c *controlConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if !c.plain.Load() {
			return n, err
		}
		// A read of Telnet bytes alone must not look like a read of nothing.
		if n = c.telnet.filter(p[:n]); n > 0 || err != nil {
			return n, err
		}
	}
}

func (c *controlConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if bytes.HasPrefix(p, []byte("234 ")) {
		// AUTH TLS accepted: what follows is TLS, not Telnet.
		c.plain.Store(false)
	}
	if s := c.sess.Load(); s != nil && n > 0 {
		s.Replied()
	}
	return n, err
}

func (c *controlConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c.key)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
