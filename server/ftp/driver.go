package ftp

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"sync"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/auth"
	"github.com/dropgate/dropgate/server/homefs"
	"github.com/dropgate/dropgate/server/sessions"
)

// mainDriver is ftpserverlib's view of dropgate: settings, logins and the
// live sessions, which ftpserverlib does not keep (its Stop only closes
// listeners).
type mainDriver struct {
	cfg      *config.Config
	auth     *auth.Authenticator
	notifier Notifier
	space    homefs.Space
	logger   *slog.Logger
	settings *ftpserver.Settings
	tls      *tls.Config
	control  *controlListener
	sessions *sessions.Registry
	// passiveTimeout closes a passive port nobody connected to.
	passiveTimeout time.Duration

	mu   sync.Mutex
	live map[uint32]*sessions.Session // by ftpserverlib client ID
}

var _ ftpserver.MainDriver = (*mainDriver)(nil)

// GetSettings returns the settings built from [ftp].
func (d *mainDriver) GetSettings() (*ftpserver.Settings, error) { return d.settings, nil }

// ClientConnected ties ftpserverlib's client to the session admitted with
// its connection. The session is closed by closing that connection, not by
// ftpserverlib's Close, which races with the library's own disconnect (a
// failed PASS): ftpserverlib then ends the session itself, closing any
// transfer.
func (d *mainDriver) ClientConnected(cc ftpserver.ClientContext) (string, error) {
	conn := d.control.conn(cc.RemoteAddr())
	if conn == nil {
		// Closed already (login deadline, stop) before ftpserverlib started.
		return "", errors.New("connection closed")
	}
	sess := conn.sess
	conn.attached.Store(true)
	d.mu.Lock()
	d.live[cc.ID()] = sess
	d.mu.Unlock()
	return "dropgate FTP ready", nil
}

// ClientDisconnected forgets a session and releases its home.
func (d *mainDriver) ClientDisconnected(cc ftpserver.ClientContext) {
	d.mu.Lock()
	sess := d.live[cc.ID()]
	delete(d.live, cc.ID())
	d.mu.Unlock()
	if sess != nil {
		sess.Remove()
	}
	if cd, ok := cc.Extra().(*clientDriver); ok {
		cd.home.Close() // waits for an upload still finishing in its transfer goroutine
		cd.logger.Info("session ended")
	}
}

// AuthUser checks the partner's password and opens its home.
func (d *mainDriver) AuthUser(cc ftpserver.ClientContext, user, pass string) (ftpserver.ClientDriver, error) {
	name, err := d.auth.CheckPassword("ftp", user, pass, cc.RemoteAddr())
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	sess := d.live[cc.ID()]
	d.mu.Unlock()
	if sess == nil {
		return nil, errors.New("connection closed")
	}
	if err := sess.Login(name); err != nil {
		return nil, err // 530 with the reason; the registry logs it
	}
	if conn := d.control.conn(cc.RemoteAddr()); conn != nil {
		conn.loggedInNow()
	}
	logger := d.logger.With("partner", name, "remote", cc.RemoteAddr().String())
	var maxUpload int64
	var maxFolders int
	if p, ok := d.cfg.Partner(name); ok {
		maxUpload, maxFolders = p.WithDefaults().MaxUploadBytes, p.WithDefaults().MaxFolders
	}
	var notifier homefs.Notifier
	if d.notifier != nil {
		notifier = d.notifier
	}
	home, err := homefs.Open(d.cfg.PartnerHome(name), homefs.Options{
		Partner: name, MaxUploadBytes: maxUpload, MaxFolders: maxFolders, Notifier: notifier, Logger: logger, Space: d.space,
		Node: d.cfg.UploadsNode(),
	})
	if err != nil {
		logger.Error("cannot open partner home", "err", err)
		return nil, errors.New("home folder unavailable; contact the operator")
	}
	cd := &clientDriver{home: home, sess: sess, logger: logger}
	cc.SetExtra(cd)
	logger.Info("session started", "tls", cc.HasTLSForControl())
	return cd, nil
}

// GetTLSConfig returns the TLS config, or an error when tls = "off" so AUTH
// TLS is refused.
func (d *mainDriver) GetTLSConfig() (*tls.Config, error) {
	if d.tls == nil {
		return nil, errors.New("TLS is disabled on this server")
	}
	return d.tls, nil
}
