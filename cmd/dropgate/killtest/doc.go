// Package killtest holds the tests that build the dropgate binary and run
// it as separate processes: SIGKILL mid-send, mid-ingest and mid-workflow,
// and several nodes on one PostgreSQL schema. They are a package of their
// own so that `go test ./...` runs them beside cmd/dropgate's in-process
// tests instead of after them: each package's two passes (SQLite, then
// PostgreSQL) must fit go test's per-package time limit on a busy machine.
package killtest
