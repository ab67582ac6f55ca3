package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/encoding/ianaindex"
)

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Validate checks every field and returns all problems at once, each naming
// its field (and line, when the config came from a file).
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Line: c.lineOf(field), Msg: fmt.Sprintf(format, args...)})
	}

	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty")
	}
	c.Store.validate(bad)
	checkAddr := func(field, addr string, optional bool) {
		if addr == "" {
			if !optional {
				bad(field, "must not be empty")
			}
			return
		}
		if _, port, err := net.SplitHostPort(addr); err != nil {
			bad(field, "%q is not a host:port address", addr)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad(field, "%q has a bad port", addr)
		}
	}
	checkAddr("sftp.listen", c.SFTP.Listen, true)
	checkAddr("ftp.listen", c.FTP.Listen, true)
	checkAddr("admin.listen", c.Admin.Listen, false)
	for _, d := range []struct {
		field string
		v     Duration
	}{{"admin.header_timeout", c.Admin.HeaderTimeout}, {"admin.body_timeout", c.Admin.BodyTimeout}, {"admin.idle_timeout", c.Admin.IdleTimeout}} {
		if d.v <= 0 {
			bad(d.field, "must be a positive duration such as \"30s\"")
		}
	}
	if c.Admin.MaxBody < 1024 {
		bad("admin.max_body", "must be at least 1024 bytes")
	}
	if c.Admin.PartnerRate < 0 {
		bad("admin.partner_rate", "must not be negative (0 turns the limit off)")
	}
	if c.Admin.PartnerRate > 0 && c.Admin.PartnerBurst < 1 {
		bad("admin.partner_burst", "must be at least 1")
	}
	switch c.Admin.TLS {
	case "off", "on", "self-signed":
	default:
		bad("admin.tls", "%q is not one of off, on, self-signed", c.Admin.TLS)
	}
	if c.Admin.TLS == "on" && (c.Admin.TLSCert == "" || c.Admin.TLSKey == "") {
		bad("admin.tls_cert", "tls = \"on\" needs tls_cert and tls_key (or use tls = \"self-signed\")")
	}
	if (c.Admin.TLSCert == "") != (c.Admin.TLSKey == "") {
		bad("admin.tls_cert", "tls_cert and tls_key must be set together")
	}
	if c.SFTP.MaxAuthTries < 1 {
		bad("sftp.max_auth_tries", "must be at least 1")
	}
	checkSSHAlgorithms(bad, "sftp.key_exchanges", c.SFTP.KeyExchanges, AllowedSSHKeyExchanges)
	checkSSHAlgorithms(bad, "sftp.ciphers", c.SFTP.Ciphers, AllowedSSHCiphers)
	checkSSHAlgorithms(bad, "sftp.macs", c.SFTP.MACs, AllowedSSHMACs)
	checkConnLimits(bad, "sftp", c.SFTP.ConnLimits)
	checkConnLimits(bad, "ftp", c.FTP.ConnLimits)
	if c.FTP.PassiveTimeout < Duration(time.Second) {
		bad("ftp.passive_timeout", `must be at least 1s, such as "20s"`)
	}
	switch c.FTP.TLS {
	case "off", "optional", "required", "implicit":
	default:
		bad("ftp.tls", "%q is not one of off, optional, required, implicit", c.FTP.TLS)
	}
	if (c.FTP.TLSCert == "") != (c.FTP.TLSKey == "") {
		bad("ftp.tls_cert", "tls_cert and tls_key must be set together")
	}
	if c.FTP.PassivePorts != "" {
		if _, _, err := ParsePortRange(c.FTP.PassivePorts); err != nil {
			bad("ftp.passive_ports", "%v", err)
		}
	}
	for i, t := range c.Admin.Tokens {
		if h, ok := strings.CutPrefix(t, "sha256:"); ok && !isHex(h, 64) {
			bad(fmt.Sprintf("admin.tokens[%d]", i), "sha256: must be followed by 64 hex digits")
		} else if !ok && len(t) < 16 {
			bad(fmt.Sprintf("admin.tokens[%d]", i), "a token must be at least 16 characters")
		}
	}
	if c.Ingest.QuietPeriod <= 0 {
		bad("ingest.quiet_period", "must be positive")
	}
	if c.Ingest.BatchSize < 1 {
		bad("ingest.batch_size", "must be at least 1")
	}
	if c.Ingest.MaxRowBytes < 256 {
		bad("ingest.max_row_bytes", "must be at least 256")
	}
	if c.Ingest.Workers < 1 || c.Ingest.Workers > 64 {
		bad("ingest.workers", "must be between 1 and 64")
	}
	if c.Ingest.ArchiveRetention < 0 {
		bad("ingest.archive_retention", `must be 0 (keep the archive forever) or a positive duration such as "720h"`)
	}
	if c.Ingest.RenderSteps < 1000 {
		bad("ingest.render_steps", "must be at least 1000")
	}
	if c.Ingest.RenderTimeout < Duration(10*time.Millisecond) {
		bad("ingest.render_timeout", `must be at least "10ms"`)
	}
	if c.Sender.Lease < Duration(time.Second) {
		bad("sender.lease", "must be at least 1s")
	}
	if c.Sender.PollInterval <= 0 {
		bad("sender.poll_interval", "must be positive")
	}
	if c.Sender.MaxAttempts < 1 {
		bad("sender.max_attempts", "must be at least 1")
	}
	if c.Defender.MaxFailures < 1 {
		bad("defender.max_failures", "must be at least 1")
	}

	channels := map[string]bool{}
	for i := range c.Channels {
		ch := &c.Channels[i]
		f := fmt.Sprintf("channel[%d]", i)
		if !nameRe.MatchString(ch.Name) {
			bad(f+".name", "%q must be lowercase letters, digits, - or _", ch.Name)
		} else if channels[ch.Name] {
			bad(f+".name", "channel %q is defined twice", ch.Name)
		}
		channels[ch.Name] = true
		switch ch.RecipientField() {
		case "email", "phone":
		default:
			bad(f+".recipient", "%q is not email or phone", ch.Recipient)
		}
		if ch.Rate < 0 {
			bad(f+".rate", "must not be negative")
		}
		if ch.Burst < 0 {
			bad(f+".burst", "must not be negative")
		}
		if ch.Concurrency < 0 {
			bad(f+".concurrency", "must not be negative")
		}
		if ch.MaxBodyBytes < 0 || ch.MaxBodyBytes > MaxRenderBytes {
			bad(f+".max_body_bytes", "must be between 0 (the default) and %d", MaxRenderBytes)
		}
		if ch.MaxSubjectBytes < 0 || ch.MaxSubjectBytes > MaxRenderBytes {
			bad(f+".max_subject_bytes", "must be between 0 (the default) and %d", MaxRenderBytes)
		}
		switch ch.Type {
		case ChannelOutbox:
		case ChannelSMTP:
			if ch.Host == "" {
				bad(f+".host", "an smtp channel needs a host")
			}
			if ch.Port < 0 || ch.Port > 65535 {
				bad(f+".port", "%d is not a port", ch.Port)
			}
			switch ch.TLS {
			case "", "starttls", "tls", "none":
			default:
				bad(f+".tls", "%q is not one of starttls, tls, none", ch.TLS)
			}
			if ch.From == "" {
				bad(f+".from", "an smtp channel needs a from address")
			}
		case ChannelHTTP:
			if u, err := url.Parse(ch.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(f+".url", "%q is not an http(s) URL", ch.URL)
			}
			if ch.Body != "" {
				if _, err := ParseProviderTemplate("body", ch.Body); err != nil {
					bad(f+".body", "does not parse: %v", err)
				}
			}
			for k, v := range ch.Headers {
				if _, err := ParseProviderTemplate(k, v); err != nil {
					bad(f+".headers."+k, "does not parse: %v", err)
				}
			}
			if ch.IDPath != "" && !strings.HasPrefix(ch.IDPath, "/") {
				bad(f+".id_path", "%q is not a JSON pointer (it starts with /)", ch.IDPath)
			}
		default:
			bad(f+".type", "%q is not one of smtp, http, outbox", ch.Type)
		}
	}

	partners := map[string]bool{}
	for i := range c.Partners {
		p := &c.Partners[i]
		f := fmt.Sprintf("partner[%d]", i)
		if !nameRe.MatchString(p.Name) {
			bad(f+".name", "%q must be lowercase letters, digits, - or _", p.Name)
		} else if partners[p.Name] {
			bad(f+".name", "partner %q is defined twice", p.Name)
		}
		partners[p.Name] = true
		if p.PasswordHash != "" && !strings.HasPrefix(p.PasswordHash, "$2") {
			bad(f+".password_hash", "must be a bcrypt hash from `dropgate hash-password`")
		}
		if p.Encoding != "" {
			if _, err := ianaindex.IANA.Encoding(p.Encoding); err != nil {
				bad(f+".encoding", "%q is not a known encoding (try utf-8, windows-1252, iso-8859-1)", p.Encoding)
			}
		}
		if p.Region != "" && phonenumbers.GetCountryCodeForRegion(strings.ToUpper(p.Region)) == 0 {
			bad(f+".region", "%q is not a known region code (e.g. PT, US, GB)", p.Region)
		}
		if p.Timezone != "" {
			if _, err := time.LoadLocation(p.Timezone); err != nil {
				bad(f+".timezone", "%q is not a known time zone (e.g. Europe/Lisbon)", p.Timezone)
			}
		}
		switch p.OnBadRows {
		case "", RejectFile, SkipRows:
		default:
			bad(f+".on_bad_rows", "%q is not reject_file or skip_rows", p.OnBadRows)
		}
		if len(p.Channels) == 0 {
			bad(f+".channels", "a partner needs at least one channel")
		}
		for j, name := range p.Channels {
			if _, ok := c.Channel(name); !ok {
				bad(fmt.Sprintf("%s.channels[%d]", f, j), "unknown channel %q", name)
			}
		}
		if p.MaxUploadBytes < 0 {
			bad(f+".max_upload_bytes", "must not be negative")
		}
		switch p.Complete {
		case "", CompleteClose, CompleteRename, CompleteMarker:
		default:
			bad(f+".complete", "%q is not close, rename or marker", p.Complete)
		}
		if p.MaxFolders < 0 {
			bad(f+".max_folders", "must not be negative")
		}
		if p.MaxRows < 0 {
			bad(f+".max_rows", "must not be negative (0 means the default, %d)", DefaultMaxRows)
		}
		if p.MaxExpandedBytes < 0 {
			bad(f+".max_expanded_bytes", "must not be negative (0 means the default, %d)", int64(DefaultMaxExpandedBytes))
		}
		p.validateLists(f, bad)
		if p.APIKey != "" {
			if h, ok := strings.CutPrefix(p.APIKey, "sha256:"); ok && !isHex(h, 64) {
				bad(f+".api_key", "sha256: must be followed by 64 hex digits")
			}
		}
	}
	c.validateStorage(bad)
	c.validateUnsubscribe(bad)
	c.validateWorkflows(bad)
	return errors.Join(errs...)
}

// ParsePortRange reads "50000-50100".
func ParsePortRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("%q is not a port range like 50000-50100", s)
	}
	return lo, hi, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// Defaults that apply per partner when its fields are empty.
const (
	DefaultEncoding  = "utf-8"
	DefaultRegion    = "US"
	DefaultTimezone  = "UTC"
	DefaultMaxUpload = 1 << 30
	// DefaultMaxFolders bounds a partner's folders in inbox/ and lists/:
	// each folder in inbox/ costs an inotify watch.
	DefaultMaxFolders = 100
	// DefaultMaxRows is 5,000,000 rows: above the largest lists seen in
	// practice (3,000,000 rows), yet at the ingest's measured 200,000+
	// rows/s at most about half a minute of one worker.
	DefaultMaxRows = 5_000_000
	// DefaultMaxExpandedBytes (4 GiB) is DefaultMaxRows rows of about 800
	// bytes, far more than a real list needs, and about ten seconds of
	// gunzip: a 4 MB bomb that expands to terabytes stops there.
	DefaultMaxExpandedBytes = 4 << 30
)

// DefaultIngestWorkers is ingest.workers' default. One file's ingest keeps
// about one core and a half busy (its reader renders rows while the
// store's flusher writes the previous batch), and every file shares
// SQLite's single writer; two workers let a small file of one partner go
// through while another's huge file is read, without three or more
// ingests fighting the sender for a 2-core machine's cores.
const DefaultIngestWorkers = 2

// WithDefaults returns a copy of p with empty fields filled in.
func (p Partner) WithDefaults() Partner {
	if p.Encoding == "" {
		p.Encoding = DefaultEncoding
	}
	if p.Region == "" {
		p.Region = DefaultRegion
	}
	p.Region = strings.ToUpper(p.Region)
	if p.Timezone == "" {
		p.Timezone = DefaultTimezone
	}
	if p.OnBadRows == "" {
		p.OnBadRows = RejectFile
	}
	if p.MaxUploadBytes == 0 {
		p.MaxUploadBytes = DefaultMaxUpload
	}
	if p.Complete == "" {
		p.Complete = CompleteClose
	}
	if p.MaxFolders == 0 {
		p.MaxFolders = DefaultMaxFolders
	}
	if p.MaxRows == 0 {
		p.MaxRows = DefaultMaxRows
	}
	if p.MaxExpandedBytes == 0 {
		p.MaxExpandedBytes = DefaultMaxExpandedBytes
	}
	return p
}
