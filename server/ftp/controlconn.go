package ftp

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dropgate/dropgate/server/sessions"
)

// controlListener admits control connections within the connection limits
// and hands ftpserverlib connections that tell their session about every
// reply written. At stop, a session whose upload has just been closed is
// closed only once the reply to it (226, or the error) is out, so the client
// learns the upload succeeded instead of seeing the connection drop.
// ftpserverlib has no hook after a reply, and with TLS the bytes are
// encrypted, so a reply is "a write after the transfer ended": ftpserverlib
// flushes each reply line in one write.
type controlListener struct {
	net.Listener
	reg *sessions.Registry
	// plain is false for implicit TLS, where the control stream is TLS
	// from its first byte.
	plain bool
	// loginTimeout closes a connection that has not logged in by then.
	loginTimeout time.Duration

	mu    sync.Mutex
	conns map[string]*controlConn // by remote address, unique per live TCP connection
}

func (l *controlListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		cc := &controlConn{Conn: c, l: l, key: c.RemoteAddr().String()}
		cc.plain.Store(l.plain)
		sess, err := l.reg.Admit(c.RemoteAddr(), cc.Close)
		if err != nil {
			// The registry logs the refusal, rate-limited.
			go l.refuse(c, err)
			continue
		}
		cc.sess = sess
		keepUrgentInline(c)
		l.mu.Lock()
		l.conns[cc.key] = cc
		l.mu.Unlock()
		cc.loginTimer.Store(time.AfterFunc(l.loginTimeout, cc.loginDeadline))
		return cc, nil
	}
}

// refuse answers a connection past a limit with 421, as RFC 959 says for a
// server that cannot serve now, and closes it.
func (l *controlListener) refuse(c net.Conn, err error) {
	if l.plain {
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(c, "421 %s\r\n", err)
	}
	c.Close()
}

// conn returns the live control connection from remote. ftpserverlib gives
// the driver the client's address, not our connection.
func (l *controlListener) conn(remote net.Addr) *controlConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[remote.String()]
}

type controlConn struct {
	net.Conn
	l    *controlListener
	key  string
	sess *sessions.Session
	// attached is set once ftpserverlib knows the session: only then do
	// replies count for the stop, and only then is the session's end
	// ftpserverlib's to report (ClientDisconnected).
	attached atomic.Bool
	once     sync.Once

	loginTimer atomic.Pointer[time.Timer]
	loggedIn   atomic.Bool

	// plain holds until the control connection turns to TLS (AUTH TLS
	// answered with 234): only a plain stream is filtered for Telnet.
	plain  atomic.Bool
	telnet telnetFilter // used by ftpserverlib's one reading goroutine
}

// loggedInNow ends the login deadline.
func (c *controlConn) loggedInNow() {
	c.loggedIn.Store(true)
	c.loginTimer.Load().Stop()
}

// loginDeadline closes a connection that did not log in within the login
// timeout (ftpserverlib's idle timeout would keep it for as long as it
// sends a command now and then).
func (c *controlConn) loginDeadline() {
	if c.loggedIn.Load() {
		return
	}
	c.l.reg.NoteLimit("login_timeout", "timeout", c.l.loginTimeout, "remote", hostOf(c.RemoteAddr()))
	if c.plain.Load() {
		// One write, so it cannot split a reply ftpserverlib writes.
		c.Conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(c.Conn, "421 Not logged in within %s; closing the connection.\r\n", c.l.loginTimeout)
	}
	c.Close()
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
	if n > 0 && c.attached.Load() {
		c.sess.Replied()
	}
	return n, err
}

// Close closes the connection and releases its place in the limits.
func (c *controlConn) Close() error {
	c.once.Do(func() {
		if t := c.loginTimer.Load(); t != nil {
			t.Stop()
		}
		c.l.mu.Lock()
		delete(c.l.conns, c.key)
		c.l.mu.Unlock()
		if c.sess != nil && !c.attached.Load() {
			c.sess.Remove()
		}
	})
	return c.Conn.Close()
}

// hostOf is an address without its port.
func hostOf(a net.Addr) string {
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}
