package config

import (
	"path/filepath"
	"strings"
)

// Folders of a partner home, relative to the home.
const (
	InboxDir     = "inbox"
	TemplatesDir = "templates"
	ListsDir     = "lists"
	SuppressDir  = "suppress"
	// EventsDir takes workflow events as CSV files (issue #11).
	EventsDir = "events"
	// SendsDir takes list sends as small TOML files (issue #10).
	SendsDir   = "sends"
	ReportsDir = "reports"
)

// HomeFolders are created in every partner home at start.
var HomeFolders = []string{InboxDir, TemplatesDir, ListsDir, SuppressDir, EventsDir, SendsDir, ReportsDir}

// DBPath is the SQLite database file.
func (c *Config) DBPath() string { return filepath.Join(c.DataDir, "dropgate.db") }

// PartnersDir holds one home per partner.
func (c *Config) PartnersDir() string { return filepath.Join(c.DataDir, "partners") }

// PartnerHome is the folder a partner sees as "/" over SFTP and FTP.
func (c *Config) PartnerHome(name string) string { return filepath.Join(c.DataDir, "partners", name) }

// ArchiveDir is where ingested originals are moved, per partner and day.
func (c *Config) ArchiveDir() string { return filepath.Join(c.DataDir, "archive") }

// OutboxDir holds <channel>.jsonl for channels of type outbox.
func (c *Config) OutboxDir() string { return filepath.Join(c.DataDir, "outbox") }

// DeliveryLogDir is where the sender logs delivery outcomes before the
// database has them (see sender/journal.go). Nodes sharing a PostgreSQL
// database share data_dir too, but each keeps and replays its own log:
// deliveries/<node>. One node on SQLite keeps deliveries/ as before.
func (c *Config) DeliveryLogDir() string {
	if c.Store.OnPostgres() {
		return filepath.Join(c.DataDir, "deliveries", c.Store.NodeName())
	}
	return filepath.Join(c.DataDir, "deliveries")
}

// SecretsDir holds generated secrets (mode 0700, files 0600).
func (c *Config) SecretsDir() string { return filepath.Join(c.DataDir, "secrets") }

// UploadTempPrefix starts the hidden name an embedded server writes an
// upload under until its clean close renames it into place.
const UploadTempPrefix = ".dropgate-upload-"

// UploadsDir is the hidden folder of a partner's home where the embedded
// servers keep uploads in progress. The ingest watcher does not watch it,
// so writes to an upload wake nobody; it is in the home, on the same file
// system as the inbox, so the rename into place stays atomic. It is
// emptied at start: what is left there was cut off by a stop.
const UploadsDir = ".dropgate-uploads"

// UploadsNode names this node's folder inside UploadsDir when several
// nodes share the homes (PostgreSQL); "" for one node, whose uploads are
// in UploadsDir itself.
func (c *Config) UploadsNode() string {
	if c.Store.OnPostgres() {
		return c.Store.NodeName()
	}
	return ""
}

// IsTempName reports whether a file name (a path or a base name) is a
// dotfile or a client's temporary upload name (WinSCP's ".filepart",
// FileZilla's ".part", "~" backups). Such a file is never ingested: the
// rename to its real name is what completes an upload. The watcher and the
// embedded servers share this one rule so they never disagree.
func IsTempName(name string) bool {
	base := filepath.Base(name)
	if base == "" || strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") {
		return true
	}
	lower := strings.ToLower(base)
	for _, suffix := range []string{".part", ".filepart", ".tmp", ".partial", ".crdownload"} {
		if strings.HasSuffix(lower, suffix) {
			return true
		}
	}
	return false
}
