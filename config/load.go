package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Default returns the embedded default configuration: data in
// ./dropgate-data, servers on loopback, and two outbox channels. The demo
// partner is added by the daemon at start when no partner is configured,
// because its password is generated and kept under the data dir.
func Default() *Config {
	return &Config{
		DataDir: "./dropgate-data",
		SFTP: SFTPConfig{
			Listen:       "127.0.0.1:2022",
			IdleTimeout:  Duration(15 * time.Minute),
			MaxAuthTries: 6,
			KeyExchanges: slices.Clone(DefaultSSHKeyExchanges),
			Ciphers:      slices.Clone(DefaultSSHCiphers),
			MACs:         slices.Clone(DefaultSSHMACs),
			ConnLimits:   DefaultConnLimits(),
		},
		FTP: FTPConfig{
			Listen:         "127.0.0.1:2121",
			TLS:            "optional",
			PassivePorts:   "50000-50100",
			IdleTimeout:    Duration(15 * time.Minute),
			PassiveTimeout: Duration(DefaultPassiveTimeout),
			ConnLimits:     DefaultConnLimits(),
		},
		Admin: AdminConfig{Listen: "127.0.0.1:8080", HeaderTimeout: Duration(10 * time.Second), BodyTimeout: Duration(30 * time.Second),
			IdleTimeout: Duration(2 * time.Minute), MaxBody: 2 << 20, PartnerRate: 20, PartnerBurst: 40, TLS: "off"},
		Ingest: IngestConfig{
			QuietPeriod:      Duration(2 * time.Second),
			BatchSize:        5000,
			MaxRowBytes:      64 << 10,
			ArchiveRetention: Duration(30 * 24 * time.Hour),
			RenderSteps:      100_000,
			RenderTimeout:    Duration(time.Second),
			Workers:          DefaultIngestWorkers,
		},
		Sender: SenderConfig{
			Lease:         Duration(60 * time.Second),
			PollInterval:  Duration(500 * time.Millisecond),
			ShutdownGrace: Duration(10 * time.Second),
			MaxAttempts:   5,
			MaxAge:        Duration(24 * time.Hour),
		},
		Defender: DefenderConfig{
			MaxFailures: 5,
			Window:      Duration(5 * time.Minute),
			BanTime:     Duration(15 * time.Minute),
		},
		Channels: DefaultChannels(),
	}
}

// DefaultChannels are the embedded default's channels: email and sms, both
// written to <data_dir>/outbox/<channel>.jsonl.
func DefaultChannels() []Channel {
	return []Channel{
		{Name: "email", Type: ChannelOutbox, Recipient: "email", Concurrency: 1},
		{Name: "sms", Type: ChannelOutbox, Recipient: "phone", Concurrency: 1},
	}
}

// Load reads the file at path over the defaults. getenv expands ${VAR}
// references (os.Getenv when nil).
func Load(path string, getenv func(string) string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open config: %w", err)
	}
	defer f.Close()
	cfg, err := Parse(f, getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes TOML from r over Default(). Unknown keys are errors that name
// their line. Channels and partners in the file replace the defaults'.
func Parse(r io.Reader, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	cfg := Default()
	cfg.Channels = nil
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(cfg)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("line %d: %s", perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("cannot decode config: %w", err)
	}
	cfg.lines = keyLines(data)
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		var errs []error
		for _, k := range undecoded {
			path := k.String()
			errs = append(errs, &FieldError{Field: path, Line: cfg.lineOfKey(path), Msg: "unknown key"})
		}
		return nil, errors.Join(errs...)
	}
	if len(cfg.Channels) == 0 {
		cfg.Channels = DefaultChannels()
	}
	cfg.expand(getenv)
	return cfg, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${VAR} in the values that commonly hold secrets or
// deployment-specific addresses.
func (c *Config) expand(getenv func(string) string) {
	x := func(s string) string {
		return envRef.ReplaceAllStringFunc(s, func(m string) string {
			return getenv(m[2 : len(m)-1])
		})
	}
	c.DataDir = x(c.DataDir)
	c.Store.DSN = x(c.Store.DSN)
	c.SFTP.Listen, c.SFTP.HostKey = x(c.SFTP.Listen), x(c.SFTP.HostKey)
	c.FTP.Listen, c.FTP.TLSCert, c.FTP.TLSKey, c.FTP.PublicHost = x(c.FTP.Listen), x(c.FTP.TLSCert), x(c.FTP.TLSKey), x(c.FTP.PublicHost)
	c.Admin.Listen, c.Admin.TLSCert, c.Admin.TLSKey = x(c.Admin.Listen), x(c.Admin.TLSCert), x(c.Admin.TLSKey)
	c.Admin.PublicURL = x(c.Admin.PublicURL)
	var tokens []string
	for _, t := range c.Admin.Tokens {
		if t = x(t); t != "" { // an unset ${VAR} drops the token instead of allowing ""
			tokens = append(tokens, t)
		}
	}
	c.Admin.Tokens = tokens
	for i := range c.Partners {
		p := &c.Partners[i]
		p.PasswordHash, p.APIKey = x(p.PasswordHash), x(p.APIKey)
		for j := range p.AuthorizedKeys {
			p.AuthorizedKeys[j] = x(p.AuthorizedKeys[j])
		}
	}
	for i := range c.Channels {
		ch := &c.Channels[i]
		ch.Host, ch.Username, ch.Password, ch.From = x(ch.Host), x(ch.Username), x(ch.Password), x(ch.From)
		ch.URL, ch.Body = x(ch.URL), x(ch.Body)
		for k, v := range ch.Headers {
			ch.Headers[k] = x(v)
		}
		if ch.Inbound != nil {
			ch.Inbound.Secret = x(ch.Inbound.Secret)
		}
	}
}

// FieldError is one problem with one configuration field.
type FieldError struct {
	Field string // e.g. "partner[1].region"
	Line  int    // 0 when the field is not in the file
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Msg)
}

// lineOf returns the line of a field path like "partner[1].region", falling
// back to its table ("partner[1]") when the key itself is not in the file.
func (c *Config) lineOf(field string) int {
	for f := field; f != ""; {
		if n, ok := c.lines[f]; ok {
			return n
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}

// lineOfKey finds the line of an undecoded TOML key path ("partner.nmae"),
// which carries no array index: the first matching line wins.
func (c *Config) lineOfKey(key string) int {
	if n, ok := c.lines[key]; ok {
		return n
	}
	best := 0
	keys := make([]string, 0, len(c.lines))
	for k := range c.lines {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if stripIndexes(k) == key {
			if n := c.lines[k]; best == 0 || n < best {
				best = n
			}
		}
	}
	return best
}

var indexRe = regexp.MustCompile(`\[\d+\]`)

func stripIndexes(s string) string { return indexRe.ReplaceAllString(s, "") }

var (
	tableRe = regexp.MustCompile(`^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]`)
	arrayRe = regexp.MustCompile(`^\s*\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]`)
	keyRe   = regexp.MustCompile(`^\s*([A-Za-z0-9_-]+|"[^"]*")\s*=`)
)

// keyLines maps each key in a TOML file to its line, as field paths with
// array indexes ("partner[0].name"). It is a line scanner, not a parser:
// good enough to point a person at the right line.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	counts := map[string]int{}
	prefix := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := arrayRe.FindStringSubmatch(line); m != nil {
			prefix = fmt.Sprintf("%s[%d]", m[1], counts[m[1]])
			counts[m[1]]++
			lines[prefix] = n
			continue
		}
		if m := tableRe.FindStringSubmatch(line); m != nil {
			prefix = m[1]
			lines[prefix] = n
			continue
		}
		if m := keyRe.FindStringSubmatch(line); m != nil {
			key := strings.Trim(m[1], `"`)
			if prefix != "" {
				key = prefix + "." + key
			}
			if _, seen := lines[key]; !seen {
				lines[key] = n
			}
		}
	}
	return lines
}
