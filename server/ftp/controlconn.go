package ftp

import (
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

	mu    sync.Mutex
	conns map[string]*controlConn // by remote address, unique per live TCP connection
}

func newControlListener(ln net.Listener) *controlListener {
	return &controlListener{Listener: ln, conns: map[string]*controlConn{}}
}

func (l *controlListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &controlConn{Conn: c, l: l, key: c.RemoteAddr().String()}
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
}

func (c *controlConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
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
