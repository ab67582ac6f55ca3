package ftp

import (
	"net"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
)

var _ ftpserver.MainDriverExtensionPassiveWrapper = (*mainDriver)(nil)

// WrapPassiveListener closes a passive port that no data connection came
// to within [ftp] passive_timeout. ftpserverlib keeps a passive listener
// until the session's next PASV or its end, so sessions sending only PASV
// would hold passive ports for as long as they stay connected. (Each
// session holds at most one: a new PASV closes the previous one.)
func (d *mainDriver) WrapPassiveListener(ln net.Listener) (net.Listener, error) {
	p := &passiveListener{Listener: ln}
	p.timer.Store(time.AfterFunc(d.passiveTimeout, func() {
		if p.accepted.Load() {
			return
		}
		d.sessions.NoteLimit("passive_timeout", "timeout", d.passiveTimeout, "port", ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
	}))
	return p, nil
}

type passiveListener struct {
	net.Listener
	timer    atomic.Pointer[time.Timer]
	accepted atomic.Bool
}

func (p *passiveListener) Accept() (net.Conn, error) {
	c, err := p.Listener.Accept()
	if err == nil {
		p.accepted.Store(true)
		p.timer.Load().Stop()
	}
	return c, err
}

func (p *passiveListener) Close() error {
	p.timer.Load().Stop()
	return p.Listener.Close()
}
