// Package ingest turns the files partners drop into their homes into
// messages in the store.
//
// It watches every partner's inbox/, inbox/<template>/ and templates/
// folders, decides when an upload is complete, reads recipient CSVs as a
// stream, checks every row against its template, renders it and queues it
// through store.JobWriter, then writes the partner's reports and moves the
// original to <data_dir>/archive/<partner>/<yyyy-mm-dd>/ (the day in UTC).
// A day's archive folder is removed once the day ended longer ago than
// ingest.archive_retention (checked at start and hourly, each removal
// logged); a retention of 0 keeps the archive forever.
//
// # When a file is complete
//
// The embedded SFTP and FTP servers rename a finished upload into place and
// call FileComplete (FileRenamed for a client's rename of a temporary
// name); the watch loop takes the file at once. For other writers the
// watcher takes a file once its size and mtime have not changed for the
// quiet period (ingest.quiet_period), and a client's temporary name
// (.part, .filepart, .tmp, a dotfile, a name ending in ~) renamed to the
// real name in the same folder after 50ms without change: inotify reports
// that rename as the old name's Rename immediately followed by the new
// name's Create. Temporary names themselves are never read. At start, and
// after the watcher overflows, every folder is rescanned. A file already
// queued or being read is not queued again (a new version is taken once the
// old one is done), and a file whose SHA-256 was already queued for the
// partner is rejected as a duplicate. A list in inbox/<name>/ waits while
// templates/<name>.tmpl is settling or queued and has no stored version.
//
// Each partner's complete rule then decides whether a file of inbox/ counts
// (complete.go): close holds a plain CSV whose last line lacks its line end
// while the others have one; rename holds what was not renamed from a
// temporary name (a server's direct upload, a file written in place);
// marker waits for <name>.done and checks its sha256= and rows= lines. A
// held file stays in the inbox, recorded as "held" and reported, until an
// upload of the same name replaces it. An upload whose first bytes are an
// earlier queued upload of the same name (last 24 hours) queues only the
// records after that upload's last line (extend.go).
//
// # Recipient files
//
// .csv and .txt are read as CSV, .csv.gz and .txt.gz through gzip, and a
// .zip is read entry by entry (every .csv and .txt inside, in the archive's
// order) into one job with one combined report, each error prefixed with
// its entry's name; other names are rejected. A UTF-8 byte order mark is
// dropped (and the file then read as UTF-8 whatever the partner's
// encoding); otherwise the partner's encoding applies. The delimiter is the
// most frequent of , ; tab | on the header line. Header names are trimmed
// and compared in lower case; email, phone, template, send_at, ref, message
// and channel have a meaning, and every other column is a template variable
// (its lower-case name is the variable's name).
//
// A row's template is its template column, else the folder's
// (inbox/<template>/), else its message column is sent as it is on its
// channel column's channel, or on the first of the partner's channels whose
// recipient column the file has. Each row is checked for the recipient its
// channel needs (email: one bare address; phone: a valid number for the
// partner's region, stored in E.164), every variable the template uses, a
// valid send_at, and a successful render; every problem of the row is
// reported.
//
// A message keeps its row's variables only when its channel's driver reads
// them at send time (an http channel whose body or a header names .Vars);
// the other drivers send the rendered subject and body, so for them the
// variables are not stored.
//
// # Reports
//
// Reports are written atomically into reports/, named after the uploaded
// file's base name. <file>.errors.csv has the header line,column,value,error
// and one row per problem. Line is the physical line where the record
// starts (the header is line 1); line 0 is about the whole file (empty,
// header only, duplicate, unknown template folder, unsupported name) and
// line 1 about the header. With on_bad_rows = reject_file any bad row
// rejects the file and nothing is queued; with skip_rows the good rows are
// queued and the bad ones reported (a file with no good row is rejected).
// At most 100,000 errors are listed, then one line says how many more there
// were. <file>.result.csv (line,ref,recipient,status,provider_id,error,
// sent_at) is written when the job ends. A new upload of the same name
// removes the old reports. A template that does not parse is reported in
// reports/<name>.tmpl.errors.txt with its line and column, and the last
// good version stays in use.
//
// # Templates
//
// A template file is "key: value" header lines (channel, subject, format
// text|html, from), a line holding only ---, then the body, in Go template
// syntax with missingkey=error; html bodies use html/template. The
// functions are listed at templateFuncs. Each upload that differs from the
// latest version becomes a new version; the file stays in templates/.
package ingest
