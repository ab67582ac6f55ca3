package sender

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

var (
	_ Driver = (*smtpDriver)(nil)
	_ Prober = (*smtpDriver)(nil)
)

// maxConnIdle is how long a pooled SMTP connection may sit unused before it
// is dropped rather than reused: servers close idle sessions, and a dead
// connection found at MAIL FROM would cost the message an attempt.
const maxConnIdle = 20 * time.Second

// smtpDriver sends email through one SMTP server, keeping up to
// concurrency authenticated connections open for reuse.
type smtpDriver struct {
	client     *mail.Client // settings; connections come from it
	from       *netmail.Address
	fromDomain string
	unsub      string
	// oneClick makes a recipient's one-click unsubscribe link (RFC 8058);
	// nil without [admin] public_url.
	oneClick func(partner, recipient string) string
	addr     string

	idle chan *smtpConn

	mu     sync.Mutex
	closed bool
}

type smtpConn struct {
	c    *smtp.Client
	used time.Time
}

func newSMTPDriver(field string, cc *config.Channel, tlsConfig *tls.Config, oneClick func(partner, recipient string) string) (*smtpDriver, error) {
	from, err := netmail.ParseAddress(cc.From)
	if err != nil {
		return nil, fmt.Errorf("%s.from: %q is not an email address: %w", field, cc.From, err)
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	port := cc.Port
	if port == 0 {
		port = 587
		if cc.TLS == "tls" {
			port = 465
		}
	}
	timeout := cc.Timeout.D()
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	}
	tlsConfig = tlsConfig.Clone()
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = cc.Host
	}
	tlsConfig.MinVersion = max(tlsConfig.MinVersion, tls.VersionTLS12)
	opts := []mail.Option{mail.WithPort(port), mail.WithTimeout(timeout), mail.WithTLSConfig(tlsConfig),
		// One transaction follows another on a connection: no NOOP before
		// each (idle connections are dropped instead) and no RSET after.
		mail.WithoutNoop(), mail.WithoutRset()}
	switch cc.TLS {
	case "", "starttls":
		opts = append(opts, mail.WithTLSPortPolicy(mail.TLSMandatory))
	case "tls":
		opts = append(opts, mail.WithSSL(), mail.WithTLSPolicy(mail.NoTLS))
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		return nil, fmt.Errorf("%s.tls: %q is not one of starttls, tls, none", field, cc.TLS)
	}
	if cc.Username != "" {
		auth := mail.SMTPAuthAutoDiscover
		if cc.TLS == "none" {
			auth = mail.SMTPAuthPlainNoEnc // chosen by the admin: the server is trusted
		}
		opts = append(opts, mail.WithSMTPAuth(auth), mail.WithUsername(cc.Username), mail.WithPassword(cc.Password))
	}
	client, err := mail.NewClient(cc.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot set up the SMTP client: %w", field, err)
	}
	conc := cc.Concurrency
	if conc <= 0 {
		conc = 4
	}
	return &smtpDriver{client: client, from: from, fromDomain: strings.ToLower(domain), unsub: cc.ListUnsubscribe, oneClick: oneClick,
		addr: net.JoinHostPort(cc.Host, strconv.Itoa(port)), idle: make(chan *smtpConn, conc)}, nil
}

// Send builds the email and sends it over a pooled connection.
func (d *smtpDriver) Send(ctx context.Context, m *store.Message) (string, error) {
	msg, err := d.build(m)
	if err != nil {
		return "", permanent(err)
	}
	conn, err := d.conn(ctx)
	if err != nil {
		// About the server, not the message: the channel slows down
		// rather than spend every queued message's attempts on it.
		return "", &DeliveryError{Throttle: true, Err: fmt.Errorf("cannot connect to %s: %w", d.addr, err)}
	}
	// The SMTP client knows no context: closing the connection is how a
	// cancelled delivery ends.
	stop := context.AfterFunc(ctx, func() { conn.c.Close() })
	err = d.client.SendWithSMTPClient(conn.c, msg)
	if !stop() {
		return "", transient(fmt.Errorf("sending to %s: %w", d.addr, context.Cause(ctx)))
	}
	if err != nil {
		conn.c.Close() // its state after a failed transaction is unknown
		return "", classifySMTP(err)
	}
	d.put(conn)
	return msg.GetMessageID(), nil
}

// build turns a stored message into an email.
func (d *smtpDriver) build(m *store.Message) (*mail.Msg, error) {
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	msg.FromMailAddress(d.sender(m.Sender))
	if err := msg.To(m.Recipient); err != nil {
		return nil, fmt.Errorf("recipient %q is not an email address: %w", m.Recipient, err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(m.Key + "@" + d.fromDomain)
	msg.SetDate()
	msg.SetUserAgent("dropgate")
	// The one-click link is made here, from the message's partner and
	// recipient, rather than stored with each message at ingest: a few
	// microseconds per send against a column on every row.
	switch {
	case d.oneClick != nil:
		msg.SetListUnsubscribe(d.oneClick(m.Partner, m.Recipient), d.unsub)
		msg.SetListUnsubscribePost()
	case d.unsub != "":
		msg.SetListUnsubscribe(d.unsub)
	}
	if m.Format == "html" {
		msg.SetBodyString(mail.TypeTextPlain, htmlToText(m.Body))
		msg.AddAlternativeString(mail.TypeTextHTML, m.Body)
	} else {
		msg.SetBodyString(mail.TypeTextPlain, m.Body)
	}
	return msg, nil
}

// sender is the From of a message: the template's own from when it is an
// address in the channel's domain (the server is configured to send for
// that domain, and SPF/DKIM are aligned with it), else the channel's.
func (d *smtpDriver) sender(tmplFrom string) *netmail.Address {
	if tmplFrom == "" {
		return d.from
	}
	a, err := netmail.ParseAddress(tmplFrom)
	if err != nil {
		return d.from
	}
	_, domain, _ := strings.Cut(a.Address, "@")
	if !strings.EqualFold(domain, d.fromDomain) {
		return d.from
	}
	return a
}

// conn takes an idle connection young enough to trust, or dials one.
func (d *smtpDriver) conn(ctx context.Context) (*smtpConn, error) {
	for {
		select {
		case c := <-d.idle:
			if time.Since(c.used) < maxConnIdle {
				return c, nil
			}
			c.c.Close()
			continue
		default:
		}
		break
	}
	c, err := d.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, err
	}
	return &smtpConn{c: c}, nil
}

// put returns a healthy connection to the pool, or quits it when the pool
// is full or closed.
func (d *smtpDriver) put(c *smtpConn) {
	c.used = time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		select {
		case d.idle <- c:
			return
		default:
		}
	}
	d.client.CloseWithSMTPClient(c.c)
	c.c.Close()
}

// Close quits every pooled connection. A server may already have closed
// an idle one (421 idle timeout): that is not worth reporting.
func (d *smtpDriver) Close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	for {
		select {
		case c := <-d.idle:
			d.client.CloseWithSMTPClient(c.c)
			c.c.Close()
		default:
			return nil
		}
	}
}

// Probe opens (and pools) one connection: it checks the address, TLS and
// the credentials at once.
func (d *smtpDriver) Probe(ctx context.Context) error {
	c, err := d.conn(ctx)
	if err != nil {
		return fmt.Errorf("cannot connect to %s: %w", d.addr, err)
	}
	d.put(c)
	return nil
}

// classifySMTP maps an SMTP failure to a delivery error: 5xx replies are
// permanent, 4xx transient, and anything without a reply code (a dropped
// connection) transient. Of the 4xx replies only the server's throttle
// signals slow the whole channel down: 421 (the server closes the session,
// typically for too many connections or messages), 454, and a 4.7.x reply
// whose text speaks of rate or too many. A 451 (greylisting, a local
// problem), 450 or 452 is about that message and retries it alone.
func classifySMTP(err error) error {
	code, enhanced := smtpReply(err)
	switch {
	case code >= 500:
		return permanent(err)
	case code == 421, code == 454:
		return &DeliveryError{Throttle: true, Err: err}
	case code >= 400 && strings.HasPrefix(enhanced, "4.7.") && saysRate.MatchString(err.Error()):
		return &DeliveryError{Throttle: true, Err: err}
	case code == 0:
		var se *mail.SendError
		if errors.As(err, &se) && (se.Reason == mail.ErrGetSender || se.Reason == mail.ErrGetRcpts || se.Reason == mail.ErrNoUnencoded) {
			return permanent(err)
		}
	}
	return transient(err)
}

// smtpReply returns the reply code of an SMTP failure (0 without one) and
// its enhanced status code ("" without one). The enhanced code is read
// from the reply text when the server did not announce ENHANCEDSTATUSCODES.
func smtpReply(err error) (code int, enhanced string) {
	var se *mail.SendError
	var te *textproto.Error
	switch {
	case errors.As(err, &se):
		code, enhanced = se.ErrorCode(), se.EnhancedStatusCode()
	case errors.As(err, &te):
		code = te.Code
	}
	if code != 0 && enhanced == "" {
		enhanced = enhancedCode.FindString(err.Error())
	}
	return code, enhanced
}

var (
	// enhancedCode is an RFC 3463 status code in a 4xx or 5xx reply.
	enhancedCode = regexp.MustCompile(`\b[45]\.\d{1,3}\.\d{1,3}\b`)
	// saysRate is the wording of a 4.7.x reply about sending too fast
	// ("rate limit exceeded", "too many messages", "throttled"), unlike a
	// 4.7.1 greylisting or policy reply.
	saysRate = regexp.MustCompile(`(?i)\brate|too many|throttl`)
)
