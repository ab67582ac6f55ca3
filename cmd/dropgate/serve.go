package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/sender"
	"github.com/dropgate/dropgate/server/admin"
	"github.com/dropgate/dropgate/server/auth"
	"github.com/dropgate/dropgate/server/ftp"
	"github.com/dropgate/dropgate/server/homefs"
	"github.com/dropgate/dropgate/server/sftp"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/workflow"
)

const serveUsage = `Usage: dropgate serve [flags]

Runs the daemon: SFTP and FTP(S) servers, the inbox watcher, the sender and
the admin HTTP API. Without --config it runs on the embedded default: data in
./dropgate-data, servers on 127.0.0.1, two outbox channels and a "demo"
partner whose generated password is printed once.

`

// serveFlags are the command-line overrides of serve.
type serveFlags struct {
	config, data, adminAddr, sftpAddr, ftpAddr, logLevel, logFormat string
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", serveUsage, stderr)
	var f serveFlags
	fs.StringVar(&f.config, "config", "", "config file (TOML); the embedded default when empty")
	fs.StringVar(&f.data, "data", "", "data directory (overrides data_dir)")
	fs.StringVar(&f.adminAddr, "admin-addr", "", "admin HTTP listen address (overrides [admin] listen)")
	fs.StringVar(&f.sftpAddr, "sftp-addr", "", `SFTP listen address (overrides [sftp] listen; "off" disables)`)
	fs.StringVar(&f.ftpAddr, "ftp-addr", "", `FTP listen address (overrides [ftp] listen; "off" disables)`)
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	logger, err := newLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return &usageError{err.Error()}
	}
	cfg, err := loadConfig(f, getenv)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("cannot create data dir: %w", err)
	}
	if err := bootstrapDefaults(cfg, stdout); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid config:\n%w", err)
	}
	return serve(ctx, cfg, logger, nil)
}

// loadConfig applies defaults → file → env → flags.
func loadConfig(f serveFlags, getenv func(string) string) (*config.Config, error) {
	cfg := config.Default()
	if f.config != "" {
		var err error
		if cfg, err = config.Load(f.config, getenv); err != nil {
			return nil, err
		}
	}
	if f.data != "" {
		cfg.DataDir = f.data
	}
	if f.adminAddr != "" {
		cfg.Admin.Listen = f.adminAddr
	}
	set := func(dst *string, v string) {
		if v == "off" {
			*dst = ""
		} else if v != "" {
			*dst = v
		}
	}
	set(&cfg.SFTP.Listen, f.sftpAddr)
	set(&cfg.FTP.Listen, f.ftpAddr)
	return cfg, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

// addrs are the bound addresses of a running daemon; tests read them.
type addrs struct {
	Admin, SFTP, FTP net.Addr
}

// runner is a started part of the daemon.
type runner interface {
	Run(ctx context.Context) error
}

// serve starts every part in order (unwinding on failure), runs until ctx is
// cancelled, then stops in reverse: first the doors (file servers, admin API
// and watcher) so no new work arrives, then the sender, which finishes its
// in-flight deliveries within the configured grace, then the store.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger, ready func(addrs)) error {
	lock, err := lockDataDir(cfg.DataDir) // lock.go
	if err != nil {
		return err
	}
	defer lock.release()
	st, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("cannot open store: %w", err)
	}
	defer st.Close()
	nd, err := registerNode(ctx, st, cfg.Store.NodeName(), cfg.DataDir, logger) // node.go
	if err != nil {
		return err
	}
	warnUnconfiguredChannels(ctx, cfg, st, logger)
	wm, err := newWatermark(cfg, logger) // storage.go
	if err != nil {
		return err
	}
	st.SetFreeSpace(wm.FreeBytes)

	links, err := setupOptOuts(cfg, logger) // optouts.go
	if err != nil {
		return err
	}
	var unsubscribeURL func(partner, recipient string) string // nil: no links
	if links != nil {
		unsubscribeURL = links.URL
	}
	in, err := ingest.New(ingest.Options{Config: cfg, Store: st, Logger: logger, Space: wm, UnsubscribeURL: unsubscribeURL,
		Node: nd.claimName()})
	if err != nil {
		return fmt.Errorf("cannot start watcher: %w", err)
	}
	// The doors: each New binds its listener, so a busy port fails here,
	// before anything runs; closers unwind the parts already set up.
	var doors []runner
	closers := []func() error{in.Close}
	unwind := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](); err != nil {
				logger.Warn("cannot release a part set up before the failure", "err", err)
			}
		}
	}
	metrics := admin.NewMetrics(cfg)
	openSessions := map[string]func() int{}
	metrics.Sessions = func() map[string]int {
		out := map[string]int{}
		for proto, n := range openSessions {
			out[proto] = n()
		}
		return out
	}
	// Suppressions (suppress/ drops, the API) are asked at each message's
	// turn, so they also stop messages queued before they arrived.
	suppressed := func(ctx context.Context, partner, channel, recipient string) (bool, error) {
		return st.IsSuppressed(ctx, partner, channel, ingest.SuppressionKey(recipient))
	}
	snd, err := sender.New(sender.Options{Config: cfg, Store: st, Logger: logger, Observer: metrics, Suppressed: suppressed,
		UnsubscribeURL: unsubscribeURL})
	if err != nil {
		unwind()
		return fmt.Errorf("cannot start sender: %w", err)
	}
	var a addrs
	var bans func() []admin.Ban
	if cfg.SFTP.Listen != "" || cfg.FTP.Listen != "" {
		for _, p := range cfg.Partners {
			// Uploads cut off by the last stop; none is in flight yet.
			if err := homefs.CleanUploads(cfg.PartnerHome(p.Name), cfg.UploadsNode()); err != nil {
				logger.Warn("cannot remove uploads cut off by the last stop", "partner", p.Name, "err", err)
			}
		}
		ao := auth.Options{Config: cfg, Logger: logger, OnLoginFailed: metrics.LoginFailed}
		if st.Postgres() {
			ao.Shared, ao.Node = st, in.Node() // bans hold on every node
		}
		authn, err := auth.New(ao)
		if err != nil {
			unwind()
			return fmt.Errorf("cannot set up authentication: %w", err)
		}
		bans = func() []admin.Ban {
			var out []admin.Ban
			for _, b := range authn.Bans() {
				out = append(out, admin.Ban{Addr: b.Addr, Until: b.Until, Failures: b.Failures})
			}
			return out
		}
		if cfg.SFTP.Listen != "" {
			srv, err := sftp.New(sftp.Options{Config: cfg, Auth: authn, Notifier: metrics.Uploads("sftp", in), Logger: logger, Space: wm})
			if err != nil {
				unwind()
				return fmt.Errorf("cannot start SFTP server: %w", err)
			}
			doors, a.SFTP = append(doors, srv), srv.Addr()
			openSessions["sftp"] = srv.OpenSessions
			closers = append(closers, srv.Close)
		}
		if cfg.FTP.Listen != "" {
			srv, err := ftp.New(ftp.Options{Config: cfg, Auth: authn, Notifier: metrics.Uploads("ftp", in), Logger: logger, Space: wm})
			if err != nil {
				unwind()
				return fmt.Errorf("cannot start FTP server: %w", err)
			}
			doors, a.FTP = append(doors, srv), srv.Addr()
			openSessions["ftp"] = srv.OpenSessions
			closers = append(closers, srv.Close)
		}
	}
	// The workflow scheduler queues messages like an API send: it starts
	// with the doors and stops before the sender.
	flows, err := workflow.New(workflow.Options{Config: cfg, Store: st, Composer: in, Logger: logger, Node: nd.claimName()})
	if err != nil {
		unwind()
		return fmt.Errorf("cannot start workflows: %w", err)
	}
	in.SetEvents(flows.AcceptFile)
	adm, err := admin.New(admin.Options{Config: cfg, Store: st, Logger: logger, Bans: bans, Nudge: snd.Nudge, Compose: in.ComposeJob,
		Storage: wm, Degraded: degraded(in, snd), PutTemplate: in.PutTemplate, Metrics: metrics,
		CheckSuppressions: in.CheckSuppressions, Unsubscribe: links, Workflows: flows, CheckEvents: in.CheckEvents,
		SendToList: in.SendToList, PutContacts: in.PutContacts, ContactKey: in.ContactKey})
	if err != nil {
		unwind()
		return err
	}
	doors, a.Admin = append(doors, adm, in, flows, &storageGuard{wm: wm, st: st, logger: logger}), adm.Addr()

	doorCtx, stopDoors := context.WithCancel(context.WithoutCancel(ctx))
	sendCtx, stopSender := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDoors()
	defer stopSender()

	failed := make(chan error, len(doors)+1)
	var doorsWG, senderWG sync.WaitGroup
	start := func(wg *sync.WaitGroup, c context.Context, r runner) {
		wg.Go(func() {
			if err := r.Run(c); err != nil {
				failed <- err
			}
		})
	}
	start(&senderWG, sendCtx, snd)
	start(&senderWG, sendCtx, nd)
	for _, d := range doors {
		start(&doorsWG, doorCtx, d)
	}
	logger.Info("dropgate started", "version", buildVersion(), "node", nd.id, "data_dir", cfg.DataDir, "admin", a.Admin,
		"sftp", addrString(a.SFTP), "ftp", addrString(a.FTP), "partners", partnerNames(cfg))
	if ready != nil {
		ready(a)
	}

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("stopping: no new uploads or API calls; finishing in-flight deliveries")
	case runErr = <-failed:
		logger.Error("a part of dropgate failed; stopping", "err", runErr)
	}
	stopDoors()
	doorsWG.Wait()
	stopSender()
	senderWG.Wait()
	nd.stop(ctx)
	close(failed)
	for err := range failed {
		runErr = errors.Join(runErr, err)
	}
	logger.Info("dropgate stopped")
	return runErr
}

// warnUnconfiguredChannels tells the admin about messages waiting on a
// channel the config no longer has: they are kept (the channel may come
// back), but nothing sends them, so their jobs cannot end until the
// channel is configured again or the jobs are cancelled.
func warnUnconfiguredChannels(ctx context.Context, cfg *config.Config, st *store.Store, logger *slog.Logger) {
	waiting, err := st.WaitingChannels(ctx)
	if err != nil {
		logger.Warn("cannot check for messages on unconfigured channels", "err", err)
		return
	}
	for ch, n := range waiting {
		if _, ok := cfg.Channel(ch); !ok {
			logger.Warn("messages wait on a channel that is not configured; configure it again, or cancel their jobs (POST /api/v1/jobs/{id}/cancel)",
				"channel", ch, "messages", n)
		}
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

func partnerNames(cfg *config.Config) string {
	names := make([]string, len(cfg.Partners))
	for i, p := range cfg.Partners {
		names[i] = p.Name
	}
	return strings.Join(names, ",")
}

// openStore opens the configured database: SQLite in data_dir, or the
// PostgreSQL database that several nodes may share.
func openStore(ctx context.Context, cfg *config.Config) (*store.Store, error) {
	if cfg.Store.OnPostgres() {
		return store.OpenPostgres(ctx, cfg.Store.DSN)
	}
	return store.Open(ctx, cfg.DBPath())
}
