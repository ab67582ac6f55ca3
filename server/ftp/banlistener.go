package ftp

import (
	"fmt"
	"net"
	"time"

	"github.com/dropgate/dropgate/server/auth"
	"github.com/dropgate/dropgate/server/sessions"
)

// limitBanned names a refusal of a banned address in the logs.
const limitBanned = "defender_ban"

// banListener refuses banned addresses at connect, before any command.
type banListener struct {
	net.Listener
	auth  *auth.Authenticator
	reg   *sessions.Registry // logs refusals, rate-limited
	plain bool               // false for implicit TLS, where a plain reply would be noise
}

func (l *banListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.auth.Banned(c.RemoteAddr()) {
			return c, nil
		}
		l.reg.NoteLimit(limitBanned, "remote", hostOf(c.RemoteAddr()))
		go func() {
			if l.plain {
				c.SetWriteDeadline(time.Now().Add(2 * time.Second))
				fmt.Fprint(c, "421 Too many failed logins from your address; try again later.\r\n")
			}
			c.Close()
		}()
	}
}
