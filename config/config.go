// Package config reads, expands and validates dropgate's TOML configuration.
//
// The order is always: Default() → the file (strict: unknown keys are errors
// with their line) → ${VAR} expansion → command-line overrides → Validate().
package config

import (
	"fmt"
	"time"
)

// Config is the whole configuration of one dropgate daemon.
type Config struct {
	// DataDir holds the database, partner homes, archive, outbox and secrets.
	DataDir string `toml:"data_dir"`

	SFTP     SFTPConfig     `toml:"sftp"`
	FTP      FTPConfig      `toml:"ftp"`
	Admin    AdminConfig    `toml:"admin"`
	Ingest   IngestConfig   `toml:"ingest"`
	Sender   SenderConfig   `toml:"sender"`
	Defender DefenderConfig `toml:"defender"`
	Storage  StorageConfig  `toml:"storage"`
	Store    StoreConfig    `toml:"store"`

	Partners []Partner `toml:"partner"`
	Channels []Channel `toml:"channel"`
	// Workflows are the automated workflows (config/workflow.go).
	Workflows []Workflow `toml:"workflow"`

	// lines maps a field path such as "partner[1].region" to its line in the
	// file, so validation errors can point at the line to fix.
	lines map[string]int
}

// SFTPConfig configures the embedded SFTP server.
type SFTPConfig struct {
	// Listen is the TCP address; "" disables the server.
	Listen string `toml:"listen"`
	// HostKey is a PEM/OpenSSH private key file; "" means
	// <data_dir>/ssh_host_ed25519_key, generated on first start.
	HostKey      string   `toml:"host_key"`
	IdleTimeout  Duration `toml:"idle_timeout"`
	MaxAuthTries int      `toml:"max_auth_tries"`
	// KeyExchanges, Ciphers and MACs are the SSH algorithms offered, in
	// order of preference; each must be in config.AllowedSSH* (sshalgos.go).
	KeyExchanges []string `toml:"key_exchanges"`
	Ciphers      []string `toml:"ciphers"`
	MACs         []string `toml:"macs"`
	ConnLimits
}

// FTPConfig configures the embedded FTP(S) server.
type FTPConfig struct {
	// Listen is the TCP address; "" disables the server.
	Listen       string   `toml:"listen"`
	TLS          string   `toml:"tls"` // off | optional | required | implicit
	TLSCert      string   `toml:"tls_cert"`
	TLSKey       string   `toml:"tls_key"`
	PassivePorts string   `toml:"passive_ports"` // "50000-50100"
	PublicHost   string   `toml:"public_host"`
	IdleTimeout  Duration `toml:"idle_timeout"`
	// PassiveTimeout closes a passive port its data connection never came
	// to (a PASV and nothing else would hold the port until the session ends).
	PassiveTimeout Duration `toml:"passive_timeout"`
	ConnLimits
}

// AdminConfig configures the admin HTTP API.
type AdminConfig struct {
	Listen string `toml:"listen"`
	// Tokens are bearer tokens with full access: a literal token, or
	// "sha256:<hex>" of one.
	Tokens []string `toml:"tokens"`
	// HeaderTimeout bounds reading a request's headers.
	HeaderTimeout Duration `toml:"header_timeout"`
	// BodyTimeout bounds reading a request's body, from the moment the
	// request is authenticated: a client that trickles gets 408.
	BodyTimeout Duration `toml:"body_timeout"`
	// IdleTimeout closes a keep-alive connection with no request.
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxBody is the largest request body accepted, in bytes (413 above).
	MaxBody int64 `toml:"max_body"`
	// PartnerRate is each partner key's API rate in requests per second
	// (token bucket; 429 with Retry-After when empty); 0 turns it off.
	PartnerRate float64 `toml:"partner_rate"`
	// PartnerBurst is the bucket's size.
	PartnerBurst int `toml:"partner_burst"`
	// TLSCert and TLSKey serve the admin API over HTTPS; with
	// TLS = "self-signed" a pair is generated under <data_dir>.
	TLS     string `toml:"tls"`
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// PublicURL is the address recipients reach the admin server's public
	// pages at (one-click unsubscribe links); "" turns the links off.
	PublicURL string `toml:"public_url"`
}

// IngestConfig tunes the watcher and CSV ingest.
type IngestConfig struct {
	// QuietPeriod is how long a file written in place must keep the same size
	// and mtime before it is taken as complete.
	QuietPeriod Duration `toml:"quiet_period"`
	// BatchSize is how many rows go into one insert transaction.
	BatchSize int `toml:"batch_size"`
	// MaxRowBytes bounds one CSV record.
	MaxRowBytes int `toml:"max_row_bytes"`
	// ArchiveRetention is how long originals are kept in the archive.
	ArchiveRetention Duration `toml:"archive_retention"`
	// RenderSteps bounds the work of rendering one message from a
	// partner's template: loop turns, function calls, and one per 256
	// bytes of text a function makes.
	RenderSteps int64 `toml:"render_steps"`
	// RenderTimeout bounds the time of rendering one message.
	RenderTimeout Duration `toml:"render_timeout"`
	// Workers is how many files are ingested at once, each of a different
	// partner, partners taking turns.
	Workers int `toml:"workers"`
}

// SenderConfig tunes the delivery loop.
type SenderConfig struct {
	// Lease is how long a claimed message stays reserved for one worker.
	Lease Duration `toml:"lease"`
	// PollInterval is how often an idle sender looks for due messages.
	PollInterval Duration `toml:"poll_interval"`
	// ShutdownGrace bounds how long in-flight deliveries may finish on stop.
	ShutdownGrace Duration `toml:"shutdown_grace"`
	// MaxAttempts and MaxAge are the defaults for channels that set none.
	MaxAttempts int      `toml:"max_attempts"`
	MaxAge      Duration `toml:"max_age"`
}

// DefenderConfig bans addresses after repeated failed logins.
type DefenderConfig struct {
	MaxFailures int      `toml:"max_failures"`
	Window      Duration `toml:"window"`
	BanTime     Duration `toml:"ban_time"`
}

// Partner is one organisation that drops files and sends through the API.
type Partner struct {
	Name           string   `toml:"name"`
	PasswordHash   string   `toml:"password_hash"` // bcrypt
	AuthorizedKeys []string `toml:"authorized_keys"`
	APIKey         string   `toml:"api_key"` // literal or "sha256:<hex>"
	Encoding       string   `toml:"encoding"`
	Region         string   `toml:"region"`
	Timezone       string   `toml:"timezone"`
	OnBadRows      string   `toml:"on_bad_rows"` // reject_file | skip_rows
	Channels       []string `toml:"channels"`
	// MaxUploadBytes ends an upload that grows past it (0: the default).
	MaxUploadBytes int64 `toml:"max_upload_bytes"`
	// Complete says when an upload counts as whole: close (default),
	// rename or marker.
	Complete string `toml:"complete"`
	// MaxFolders caps the folders the partner may have in inbox/ and
	// lists/ together (0: the default).
	MaxFolders int `toml:"max_folders"`
	// MaxRows rejects a recipient file with more rows (0: the default).
	MaxRows int `toml:"max_rows"`
	// MaxExpandedBytes rejects a .csv.gz or .zip whose content expands to
	// more bytes (0: the default); it bounds a decompression bomb.
	MaxExpandedBytes int64 `toml:"max_expanded_bytes"`
	// QuietHours is a daily window such as "21:00-08:00", in the partner's
	// time zone, when workflow steps on phone channels wait (config/workflow.go).
	QuietHours string `toml:"quiet_hours"`
	// Lists holds per-list settings ([[partner.list]], config/lists.go).
	Lists []PartnerList `toml:"list"`
}

// Channel is one delivery route: an SMTP server, an HTTP provider or the
// local outbox file.
type Channel struct {
	Name string `toml:"name"`
	Type string `toml:"type"` // smtp | http | outbox
	// Recipient names the CSV column that addresses this channel: "email"
	// or "phone". Defaults: email for smtp, phone for http.
	Recipient string `toml:"recipient"`

	// SMTP.
	Host            string `toml:"host"`
	Port            int    `toml:"port"`
	Username        string `toml:"username"`
	Password        string `toml:"password"`
	TLS             string `toml:"tls"` // starttls | tls | none
	From            string `toml:"from"`
	ListUnsubscribe string `toml:"list_unsubscribe"`

	// HTTP.
	URL           string            `toml:"url"`
	Method        string            `toml:"method"`
	Headers       map[string]string `toml:"headers"`
	ContentType   string            `toml:"content_type"`
	Body          string            `toml:"body"`
	IDPath        string            `toml:"id_path"`
	SuccessStatus []int             `toml:"success_status"`
	Timeout       Duration          `toml:"timeout"`
	// Inbound, when set, takes the provider's inbound messages (opt-outs).
	Inbound *Inbound `toml:"inbound"`

	// Limits, all channel types.
	Rate        float64  `toml:"rate"` // messages per second; 0 = unlimited
	Burst       int      `toml:"burst"`
	Concurrency int      `toml:"concurrency"`
	MaxAttempts int      `toml:"max_attempts"`
	MaxAge      Duration `toml:"max_age"`

	// MaxBodyBytes and MaxSubjectBytes bound a message rendered from a
	// template for this channel (0: the default of the channel's kind; see
	// BodyLimit and SubjectLimit).
	MaxBodyBytes    int `toml:"max_body_bytes"`
	MaxSubjectBytes int `toml:"max_subject_bytes"`
}

// Default render limits. They are what providers accept, so a message past
// them would fail at send time anyway, and they bound what one render of a
// partner's template may hold in memory and store:
//   - email: providers take messages of 10 MB or more (Gmail 25 MB, SES
//     40 MB, SendGrid 30 MB), attachments included; a body of text or HTML
//     past 1 MiB is a mistake (Gmail clips HTML past 102 KB), never a letter;
//   - phone (SMS, WhatsApp, push): Twilio refuses an SMS past 1,600
//     characters, WhatsApp a text past 4,096, FCM and APNs a payload past
//     4 KB: 4 KiB;
//   - subject: RFC 5322 lets a header line run to 998 characters; 1 KiB.
const (
	DefaultEmailBodyBytes = 1 << 20
	DefaultPhoneBodyBytes = 4 << 10
	DefaultSubjectBytes   = 1 << 10
	// MaxRenderBytes is the largest limit a channel may set.
	MaxRenderBytes = 64 << 20
)

// BodyLimit returns the largest body a template may render for this
// channel: max_body_bytes, or the default of its recipient kind.
func (ch *Channel) BodyLimit() int {
	switch {
	case ch.MaxBodyBytes > 0:
		return ch.MaxBodyBytes
	case ch.RecipientField() == "email":
		return DefaultEmailBodyBytes
	}
	return DefaultPhoneBodyBytes
}

// SubjectLimit returns the largest subject a template may render for this
// channel: max_subject_bytes, or DefaultSubjectBytes.
func (ch *Channel) SubjectLimit() int {
	if ch.MaxSubjectBytes > 0 {
		return ch.MaxSubjectBytes
	}
	return DefaultSubjectBytes
}

// Channel types.
const (
	ChannelSMTP   = "smtp"
	ChannelHTTP   = "http"
	ChannelOutbox = "outbox"
)

// Bad-row policies.
const (
	RejectFile = "reject_file"
	SkipRows   = "skip_rows"
)

// Completion rules: how an upload counts as whole (a partner's complete).
const (
	// CompleteClose takes a file once it is closed (or still for the quiet
	// period), and holds one whose last line lacks its line end.
	CompleteClose = "close"
	// CompleteRename takes only a temporary name renamed into place.
	CompleteRename = "rename"
	// CompleteMarker takes a file once <name>.done is there too.
	CompleteMarker = "marker"
)

// MarkerSuffix ends the name of a completion marker: orders.csv.done.
const MarkerSuffix = ".done"

// Partner returns the partner with the given name.
func (c *Config) Partner(name string) (*Partner, bool) {
	for i := range c.Partners {
		if c.Partners[i].Name == name {
			return &c.Partners[i], true
		}
	}
	return nil, false
}

// Channel returns the channel with the given name.
func (c *Config) Channel(name string) (*Channel, bool) {
	for i := range c.Channels {
		if c.Channels[i].Name == name {
			return &c.Channels[i], true
		}
	}
	return nil, false
}

// RecipientField returns the column that addresses this channel.
func (ch *Channel) RecipientField() string {
	if ch.Recipient != "" {
		return ch.Recipient
	}
	if ch.Type == ChannelSMTP {
		return "email"
	}
	return "phone"
}

// Duration is a time.Duration that reads "2s" or "24h" from TOML.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"2s\" or \"24h\"", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
