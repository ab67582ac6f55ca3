package ftp

import (
	"net"
	"sync"
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
	p.timer = time.AfterFunc(d.passiveTimeout, func() {
		if p.accepted.Load() {
			return
		}
		d.sessions.NoteLimit("passive_timeout", "timeout", d.passiveTimeout, "port", ln.Addr().(*net.TCPAddr).Port)
		p.Close()
	})
	return p, nil
}

type passiveListener struct {
	net.Listener
	timer    *time.Timer
	accepted atomic.Bool
	once     sync.Once
}

func (p *passiveListener) Accept() (net.Conn, error) {
	c, err := p.Listener.Accept()
	if err == nil {
		p.accepted.Store(true)
		p.timer.Stop()
	}
	return c, err
}

func (p *passiveListener) Close() error {
	p.once.Do(func() { p.timer.Stop() })
	return p.Listener.Close()
}
