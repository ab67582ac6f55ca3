package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func parseValid(t *testing.T, src string, env map[string]string) *Config {
	t.Helper()
	cfg, err := Parse(strings.NewReader(src), func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return cfg
}

func TestDefaultIsValid(t *testing.T) {
	cfg := Default()
	cfg.Partners = []Partner{{Name: "demo", Channels: []string{"email", "sms"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseFullConfigExpandsEnv(t *testing.T) {
	src := `
data_dir = "/tmp/dg"

[sftp]
listen = "0.0.0.0:2022"

[ftp]
listen = ""
tls = "required"
passive_ports = "50000-50010"

[admin]
listen = "127.0.0.1:9090"
tokens = ["${ADMIN_TOKEN}", "${UNSET_TOKEN}"]

[ingest]
quiet_period = "500ms"

[[partner]]
name = "acme"
password_hash = "$2a$10$abcdefghijklmnopqrstuv"
authorized_keys = ["ssh-ed25519 AAAA ops@acme"]
encoding = "windows-1252"
region = "pt"
timezone = "Europe/Lisbon"
on_bad_rows = "skip_rows"
channels = ["sms"]

[[channel]]
name = "sms"
type = "http"
url = "https://sms.example/v1/messages"
headers = { Authorization = "Bearer ${SMS_TOKEN}" }
body = '{"to": {{json .To}}}'
id_path = "/id"
rate = 10
`
	cfg := parseValid(t, src, map[string]string{"ADMIN_TOKEN": "0123456789abcdef0123", "SMS_TOKEN": "s3cret"})
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if got := cfg.Admin.Tokens; len(got) != 1 || got[0] != "0123456789abcdef0123" {
		t.Errorf("tokens = %q: want the set variable only (an unset one must not become an empty token)", got)
	}
	if cfg.Channels[0].Headers["Authorization"] != "Bearer s3cret" {
		t.Errorf("header not expanded: %q", cfg.Channels[0].Headers["Authorization"])
	}
	if cfg.Ingest.QuietPeriod.D() != 500*time.Millisecond {
		t.Errorf("quiet_period = %v", cfg.Ingest.QuietPeriod.D())
	}
	if cfg.Ingest.BatchSize != Default().Ingest.BatchSize {
		t.Errorf("default not kept for unset key")
	}
	if len(cfg.Channels) != 1 {
		t.Errorf("channels in the file must replace the defaults, got %d", len(cfg.Channels))
	}
	if p := cfg.Partners[0].WithDefaults(); p.Region != "PT" || p.MaxUploadBytes == 0 {
		t.Errorf("partner defaults: %+v", p)
	}
}

func TestParseRejectsUnknownKeyWithLine(t *testing.T) {
	src := "data_dir = \"x\"\n\n[[partner]]\nname = \"a\"\nchanels = [\"sms\"]\n"
	_, err := Parse(strings.NewReader(src), nil)
	if err == nil {
		t.Fatal("want error")
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Line != 5 || fe.Field != "partner.chanels" {
		t.Fatalf("got %v, want partner.chanels at line 5", err)
	}
}

func TestParseSyntaxErrorHasLine(t *testing.T) {
	_, err := Parse(strings.NewReader("data_dir = \"x\"\nlisten = = 3\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("got %v, want line 2", err)
	}
}

func TestParseBadValueTypeIsAnError(t *testing.T) {
	_, err := Parse(strings.NewReader("[ingest]\nquiet_period = \"soon\"\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("got %v", err)
	}
}

func TestValidateNamesFieldAndLine(t *testing.T) {
	src := `[admin]
listen = "nonsense"

[[channel]]
name = "sms"
type = "outbox"

[[partner]]
name = "a"
channels = ["sms"]

[[partner]]
name = "a"
region = "ZZ"
encoding = "klingon"
timezone = "Mars/Base"
on_bad_rows = "ignore"
channels = ["fax"]
`
	cfg := parseValid(t, src, nil)
	err := cfg.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`line 2: admin.listen: "nonsense" is not a host:port address`,
		`line 13: partner[1].name: partner "a" is defined twice`,
		`line 14: partner[1].region: "ZZ" is not a known region code`,
		`line 15: partner[1].encoding: "klingon" is not a known encoding`,
		`line 16: partner[1].timezone`,
		`line 17: partner[1].on_bad_rows`,
		`line 18: partner[1].channels[0]: unknown channel "fax"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestValidateRejectsNegativeArchiveRetention(t *testing.T) {
	cfg := parseValid(t, "[ingest]\narchive_retention = \"-24h\"\n", nil)
	err := cfg.Validate()
	if want := "line 2: ingest.archive_retention: must be 0"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Validate() = %v, want %q", err, want)
	}
}

func TestValidateChannelCrossFields(t *testing.T) {
	cfg := Default()
	cfg.Channels = []Channel{
		{Name: "mail", Type: ChannelSMTP},
		{Name: "sms", Type: ChannelHTTP, URL: "ftp://x", Body: "{{.To", IDPath: "id",
			Headers: map[string]string{"X-Sig": "{{hmac .Body}}", "X-To": "{{urlquery .To}}"}},
		{Name: "sms", Type: "pigeon"},
	}
	err := cfg.Validate()
	for _, want := range []string{"channel[0].host", "channel[0].from", "channel[1].url", "channel[1].body: does not parse",
		"channel[1].id_path", `channel[1].headers.X-Sig: does not parse: template: X-Sig:1: function "hmac" not defined`, "channel[2].name: channel \"sms\" is defined twice", "channel[2].type"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "X-To") {
		t.Errorf("a header template with the channel's own functions is refused:\n%v", err)
	}
}

func TestValidateSSHAlgorithmsStayWithinThePolicy(t *testing.T) {
	src := `[sftp]
ciphers = ["aes128-ctr", "aes128-cbc"]
macs = ["hmac-sha1"]
key_exchanges = []
`
	err := parseValid(t, src, nil).Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`line 2: sftp.ciphers[1]: "aes128-cbc" is not allowed`,
		`line 3: sftp.macs[0]: "hmac-sha1" is not allowed`,
		`line 4: sftp.key_exchanges: must list at least one of`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), `"aes128-ctr"`) {
		t.Errorf("aes128-ctr is in the allowed set, but was refused:\n%v", err)
	}

	// The defaults are OpenSSH's without SHA-1: what libssh2 1.10 clients
	// (curl on Debian 12) need is in them, and they are valid.
	cfg := Default()
	for _, want := range []string{"aes128-ctr", "aes256-ctr"} {
		if !slices.Contains(cfg.SFTP.Ciphers, want) {
			t.Errorf("default ciphers %v lack %s", cfg.SFTP.Ciphers, want)
		}
	}
	for _, want := range []string{"hmac-sha2-256", "hmac-sha2-512", "hmac-sha2-256-etm@openssh.com"} {
		if !slices.Contains(cfg.SFTP.MACs, want) {
			t.Errorf("default MACs %v lack %s", cfg.SFTP.MACs, want)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestValidateCompleteAndMaxFolders(t *testing.T) {
	src := `[[channel]]
name = "sms"
type = "outbox"

[[partner]]
name = "a"
channels = ["sms"]
complete = "whenever"
max_folders = -1
`
	err := parseValid(t, src, nil).Validate()
	for _, want := range []string{
		`line 8: partner[0].complete: "whenever" is not close, rename or marker`,
		`line 9: partner[0].max_folders: must not be negative`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	p := Partner{Name: "b"}.WithDefaults()
	if p.Complete != CompleteClose || p.MaxFolders != DefaultMaxFolders {
		t.Errorf("defaults: complete %q, max_folders %d", p.Complete, p.MaxFolders)
	}
}

func TestRenderLimitsDefaultByRecipientAndAreValidated(t *testing.T) {
	cfg := parseValid(t, "[ingest]\nrender_steps = 10\nrender_timeout = \"0s\"\n\n[[channel]]\nname = \"push\"\ntype = \"outbox\"\nmax_body_bytes = -1\nmax_subject_bytes = 100000000\n", nil)
	err := cfg.Validate()
	for _, want := range []string{"line 2: ingest.render_steps: must be at least 1000", "line 3: ingest.render_timeout", "channel[0].max_body_bytes", "channel[0].max_subject_bytes"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	for _, c := range []struct {
		ch            Channel
		body, subject int
	}{
		{Channel{Type: ChannelSMTP}, 1 << 20, 1024},
		{Channel{Type: ChannelHTTP, Recipient: "email"}, 1 << 20, 1024},
		{Channel{Type: ChannelHTTP}, 4096, 1024},
		{Channel{Type: ChannelOutbox, Recipient: "phone", MaxBodyBytes: 160, MaxSubjectBytes: 10}, 160, 10},
	} {
		if b, s := c.ch.BodyLimit(), c.ch.SubjectLimit(); b != c.body || s != c.subject {
			t.Errorf("%+v: limits %d, %d; want %d, %d", c.ch, b, s, c.body, c.subject)
		}
	}
	if d := Default(); d.Ingest.RenderSteps != 100_000 || d.Ingest.RenderTimeout != Duration(time.Second) {
		t.Errorf("default render budget %d, %s", d.Ingest.RenderSteps, d.Ingest.RenderTimeout.D())
	}
}

func TestValidateIngestLimits(t *testing.T) {
	src := `[ingest]
workers = 0

[[channel]]
name = "sms"
type = "outbox"

[[partner]]
name = "a"
channels = ["sms"]
max_rows = -1
max_expanded_bytes = -5
`
	err := parseValid(t, src, nil).Validate()
	for _, want := range []string{
		"line 2: ingest.workers: must be between 1 and 64",
		"line 11: partner[0].max_rows: must not be negative",
		"line 12: partner[0].max_expanded_bytes: must not be negative",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	p := Partner{Name: "a"}.WithDefaults()
	if p.MaxRows != DefaultMaxRows || p.MaxExpandedBytes != DefaultMaxExpandedBytes || Default().Ingest.Workers != DefaultIngestWorkers {
		t.Errorf("defaults: max_rows %d, max_expanded_bytes %d, workers %d", p.MaxRows, p.MaxExpandedBytes, Default().Ingest.Workers)
	}
}
