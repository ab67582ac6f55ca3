package store

import "time"

// File statuses.
const (
	FileReceived = "received"
	FileRejected = "rejected"
	FileQueued   = "queued"
	// FileHeld is an upload that does not count as complete yet (it looks
	// cut off, or arrived in a way the partner's completion rule does not
	// accept); it stays in the inbox until replaced.
	FileHeld = "held"
	// FileReplaced is a held upload that a later upload of the same name
	// replaced.
	FileReplaced = "replaced"
	// FileQuarantined is an upload whose processing failed or was cut off
	// twice: moved to the archive, reported, never read again by itself.
	FileQuarantined = "quarantined"
)

// Job statuses. A job is "ingesting" while its file is still being read: the
// sender never picks it, so a file rejected half-way sends nothing.
const (
	JobIngesting = "ingesting"
	JobQueued    = "queued"
	JobSending   = "sending"
	JobPaused    = "paused"
	JobDone      = "done"
	JobCancelled = "cancelled"
)

// Job sources.
const (
	SourceFile     = "file"
	SourceAPI      = "api"
	SourceList     = "list"
	SourceWorkflow = "workflow"
)

// Job priorities: lower goes first.
const (
	PriorityTransactional = 0
	PriorityBulk          = 1
)

// Message statuses. sent, failed, suppressed and cancelled are final.
const (
	MsgQueued     = "queued"
	MsgSending    = "sending"
	MsgSent       = "sent"
	MsgFailed     = "failed"
	MsgSuppressed = "suppressed"
	MsgCancelled  = "cancelled"
)

// File is one uploaded file and what became of it.
type File struct {
	ID          int64     `json:"id"`
	Partner     string    `json:"partner"`
	Name        string    `json:"name"` // path in the partner home
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	Status      string    `json:"status"`
	Error       string    `json:"error,omitempty"`
	RowsTotal   int       `json:"rows_total"`
	RowsBad     int       `json:"rows_bad"`
	JobID       int64     `json:"job_id,omitempty"`
	ArchivePath string    `json:"-"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Errors is filled by FileWithErrors.
	Errors []FileError `json:"errors,omitempty"`
}

// FileError is one rejected row (or, with Line 0, the whole file).
type FileError struct {
	Line   int    `json:"line"`
	Column string `json:"column,omitempty"`
	Value  string `json:"value,omitempty"`
	Error  string `json:"error"`
}

// Job is a batch of messages from one source.
type Job struct {
	ID         int64          `json:"id"`
	Partner    string         `json:"partner"`
	Source     string         `json:"source"`
	FileID     int64          `json:"file_id,omitempty"`
	FileName   string         `json:"file_name,omitempty"`
	Status     string         `json:"status"`
	Priority   int            `json:"priority"`
	Total      int            `json:"total"`
	Templates  []TemplateRef  `json:"templates,omitempty"`
	Counts     map[string]int `json:"counts"`
	CreatedAt  time.Time      `json:"created_at"`
	StartedAt  time.Time      `json:"started_at,omitzero"`
	FinishedAt time.Time      `json:"finished_at,omitzero"`
	ReportedAt time.Time      `json:"-"`
}

// Message is one rendered message to one recipient.
type Message struct {
	ID            int64             `json:"id"`
	Key           string            `json:"idempotency_key"`
	JobID         int64             `json:"job_id"`
	Partner       string            `json:"partner"`
	Channel       string            `json:"channel"`
	Priority      int               `json:"priority"`
	Line          int               `json:"line,omitempty"`
	Ref           string            `json:"ref,omitempty"`
	Recipient     string            `json:"recipient"`
	Subject       string            `json:"subject,omitempty"`
	Body          string            `json:"body"`
	Format        string            `json:"format"`
	Sender        string            `json:"from,omitempty"`
	Vars          map[string]string `json:"vars,omitempty"`
	Status        string            `json:"status"`
	Attempts      int               `json:"attempts"`
	NextAttemptAt time.Time         `json:"next_attempt_at"`
	LeaseUntil    time.Time         `json:"-"`
	ExpiresAt     time.Time         `json:"expires_at,omitzero"`
	ProviderID    string            `json:"provider_id,omitempty"`
	LastError     string            `json:"last_error,omitempty"`
	SentAt        time.Time         `json:"sent_at,omitzero"`
	CreatedAt     time.Time         `json:"created_at"`
}

// Template is one version of a partner's message template.
type Template struct {
	ID        int64     `json:"id"`
	Partner   string    `json:"partner"`
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	Channel   string    `json:"channel"`
	Subject   string    `json:"subject,omitempty"`
	Format    string    `json:"format"`
	Sender    string    `json:"from,omitempty"`
	Body      string    `json:"body"`
	Source    string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}
