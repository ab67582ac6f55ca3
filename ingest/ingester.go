package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// Options are what an Ingester needs.
type Options struct {
	// Config is the validated configuration.
	Config *config.Config
	// Store receives files, jobs, messages and template versions.
	Store *store.Store
	// Logger is the parent logger; nil discards logs, as in every component.
	Logger *slog.Logger
	// Now is the clock for archive folders; nil means time.Now.
	Now func() time.Time
	// Space pauses ingest while storage is short (diskpause.go); nil: never.
	Space Space
	// UnsubscribeURL makes a recipient's one-click unsubscribe link for
	// {{unsubscribe_url}}; nil (no [admin] public_url) refuses templates
	// that place it.
	UnsubscribeURL func(partner, recipient string) string
	// Node names this node in the file claims shared with other nodes
	// (claims.go); "" makes one from the host and process.
	Node string
}

// Ingester watches the partner homes and ingests what partners drop there.
// A small pool of workers (ingest.workers) ingests files, partners taking
// turns and each partner's files one at a time, in the order they became
// complete (workQueue).
type Ingester struct {
	cfg      *config.Config
	required requiredData // event data that workflows require (workflowdata.go)
	st       *store.Store
	log      *slog.Logger
	now      func() time.Time
	quiet    time.Duration
	root     string // absolute partners dir
	partners map[string]*partner
	watcher  *fsnotify.Watcher
	queue    *workQueue
	pause    diskPause    // waiting for storage space (diskpause.go)
	budget   renderBudget // what one render of a partner's template may spend
	// unsubscribeURL is Options.UnsubscribeURL.
	unsubscribeURL func(partner, recipient string) string
	// events accepts the events of events/ files (SetEvents); nil: such
	// files are refused.
	events func(ctx context.Context, fileID int64, rows int, events []store.Event) ([]store.EventResult, error)

	mu        sync.Mutex
	templates map[int64]*messageTemplate // compiled template versions by id

	// arrivals says how each queued file came (the latest arrival of a
	// name wins: it is what is on disk); the processor takes it.
	arrMu    sync.Mutex
	arrivals map[workItem]arrival
	// completions are the embedded servers' signals, handed to the watch
	// loop, which alone decides when a file is taken (a list may have to
	// wait for its template).
	complMu     sync.Mutex
	completions []completion
	wake        chan struct{}
	// scanned is closed once the watch loop's first rescan is done: what
	// happens in the homes from then on is seen as events.
	scanned chan struct{}
	// clock times the quiet periods; tests replace it to decide when a
	// file has been still long enough.
	clock func() time.Time
	// kicked are the template versions a waiting list took (the watch
	// loop's alone): see waitsForTemplate.
	kicked map[workItem]templateSeen
	// uploaded are the files an embedded server reported in place (watch
	// loop only): its rename from the uploads folder, which nobody
	// watches, reaches the watcher as a plain Create (watcher.go).
	uploaded map[workItem]os.FileInfo
	// ingesting, when set, is called once a list's job exists and before
	// its rows are read: tests hold a file in progress there, or fail its
	// read with the error it returns.
	ingesting func(ctx context.Context, it workItem) error
	// applying, when set, is called just before an applied file commits,
	// or before a sends/ file's job is made (a takeover later than that
	// removes the job): tests stall a node there.
	applying func(rel string)
	// claims are this node's holds on the files it reads (claims.go).
	claims fileClaims
}

// completion is one server signal: a file in place, and how it came.
type completion struct {
	item workItem
	how  arrival
}

// partner is one partner's configuration as ingest uses it.
type partner struct {
	cfg      config.Partner // with defaults applied
	home     string
	channels []config.Channel
	loc      *time.Location
	// keepVars names the channels whose driver reads a message's variables
	// at send time; the other channels' messages are stored without them.
	keepVars map[string]bool
	// ingesting is held while one of the partner's files is read: a file
	// and its marker may be taken from two queue items.
	ingesting sync.Mutex
	// watched are the partner's inbox/<template>/ folders with a watch
	// (the watch loop's alone), bounded by max_folders; capWarned is set
	// once the bound was logged.
	watched   map[string]bool
	capWarned bool
}

// New creates every partner's home folders and the archive folder, and
// starts watching the inboxes and template folders. It fails when the
// folders cannot be created or the watcher cannot start.
func New(opts Options) (*Ingester, error) {
	if opts.Config == nil || opts.Store == nil {
		return nil, errors.New("ingest: Config and Store are required")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	cfg := opts.Config
	root, err := filepath.Abs(cfg.PartnersDir())
	if err != nil {
		return nil, fmt.Errorf("cannot resolve partners folder: %w", err)
	}
	in := &Ingester{
		cfg: cfg, st: opts.Store, log: logger.With("component", "ingest"), now: now,
		quiet: cfg.Ingest.QuietPeriod.D(), root: root, partners: map[string]*partner{},
		queue: newWorkQueue(), templates: map[int64]*messageTemplate{}, required: newRequiredData(cfg),
		arrivals: map[workItem]arrival{}, wake: make(chan struct{}, 1), scanned: make(chan struct{}), clock: time.Now,
		pause: diskPause{space: opts.Space, cleanup: true}, // until Run's startupCleanup
	}
	if in.quiet <= 0 {
		in.quiet = 2 * time.Second
	}
	in.budget = defaultRenderBudget
	in.claims = fileClaims{node: opts.Node, lease: defaultClaimLease, held: map[workItem]bool{}, deferred: map[workItem]time.Time{}}
	if in.claims.node == "" {
		in.claims.node = newNodeID()
	}
	in.unsubscribeURL = opts.UnsubscribeURL
	if cfg.Ingest.RenderSteps > 0 {
		in.budget.steps = cfg.Ingest.RenderSteps
	}
	if cfg.Ingest.RenderTimeout > 0 {
		in.budget.timeout = cfg.Ingest.RenderTimeout.D()
	}
	for _, pc := range cfg.Partners {
		p, err := in.preparePartner(pc.WithDefaults())
		if err != nil {
			return nil, err
		}
		in.partners[p.cfg.Name] = p
	}
	if err := os.MkdirAll(cfg.ArchiveDir(), 0o750); err != nil {
		return nil, fmt.Errorf("cannot create archive folder: %w", err)
	}
	if in.watcher, err = fsnotify.NewBufferedWatcher(1024); err != nil {
		return nil, fmt.Errorf("cannot start file watcher: %w", err)
	}
	for _, p := range in.partners {
		for _, dir := range []string{config.InboxDir, config.TemplatesDir, config.SuppressDir, config.EventsDir, config.SendsDir, config.ListsDir} {
			if err := in.watcher.Add(filepath.Join(p.home, dir)); err != nil {
				in.watcher.Close()
				return nil, fmt.Errorf("cannot watch %s of partner %s: %w", dir, p.cfg.Name, err)
			}
		}
	}
	return in, nil
}

func (in *Ingester) preparePartner(pc config.Partner) (*partner, error) {
	p := &partner{cfg: pc, home: filepath.Join(in.root, pc.Name), watched: map[string]bool{}}
	for _, dir := range config.HomeFolders {
		if err := os.MkdirAll(filepath.Join(p.home, dir), 0o750); err != nil {
			return nil, fmt.Errorf("cannot create home of partner %s: %w", pc.Name, err)
		}
	}
	for _, name := range pc.Channels {
		ch, ok := in.cfg.Channel(name)
		if !ok {
			return nil, fmt.Errorf("partner %s: unknown channel %q", pc.Name, name)
		}
		p.channels = append(p.channels, *ch)
		if channelReadsVars(ch) {
			if p.keepVars == nil {
				p.keepVars = map[string]bool{}
			}
			p.keepVars[ch.Name] = true
		}
	}
	loc, err := time.LoadLocation(pc.Timezone)
	if err != nil {
		return nil, fmt.Errorf("partner %s: time zone %q: %w", pc.Name, pc.Timezone, err)
	}
	p.loc = loc
	return p, nil
}

// channelReadsVars reports whether the channel's driver uses a message's
// variables when it sends: an http channel whose body or a header template
// names .Vars. Every other driver sends the rendered subject and body only,
// so storing each row's variables as well (a JSON object per message)
// would only slow the ingest of a large file down.
func channelReadsVars(ch *config.Channel) bool {
	if ch.Type != "http" {
		return false
	}
	if strings.Contains(ch.Body, "Vars") {
		return true
	}
	for _, v := range ch.Headers {
		if strings.Contains(v, "Vars") {
			return true
		}
	}
	return false
}

// Close stops the file watcher New started, for an Ingester that will not
// run (a later part of the daemon failed to start). Run stops it itself;
// fsnotify's Close may be called again, so Close after Run does nothing.
func (in *Ingester) Close() error {
	if err := in.watcher.Close(); err != nil {
		return fmt.Errorf("ingest: close watcher: %w", err)
	}
	return nil
}

// Run rescans every inbox, then ingests files as they complete, writes
// result reports as jobs end and removes archived originals past
// ingest.archive_retention (hourly; 0 keeps them forever), until ctx is
// cancelled. A file being read when ctx ends is rolled back and left in
// place, to be read again at the next start. Run returns nil on
// cancellation.
func (in *Ingester) Run(ctx context.Context) error {
	defer in.watcher.Close()
	if ctx.Err() != nil {
		return nil
	}
	// A crash part-way through a file leaves an "ingesting" job that will
	// never be sent; the file itself is still in the inbox for the rescan.
	// A cleanup that cannot run now (full disk) is retried before the next
	// file is read (diskpause.go).
	in.startupCleanup(ctx)
	if ctx.Err() != nil {
		return nil // stopped right after the start: not a failure
	}
	var wg sync.WaitGroup
	for range in.workers() {
		wg.Go(func() { in.work(ctx) })
	}
	wg.Go(func() { in.claimLoop(ctx) })
	wg.Add(2)
	go func() {
		defer wg.Done()
		in.archiveLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		in.reportLoop(ctx)
	}()
	err := in.watchLoop(ctx)
	in.queue.close()
	wg.Wait()
	return err
}

// workers is the size of the ingest pool (ingest.workers, at least one).
func (in *Ingester) workers() int {
	return max(in.cfg.Ingest.Workers, 1)
}

// work ingests queued files until ctx ends: one worker of the pool. While
// storage is short files wait in the queue (diskpause.go), and a file whose
// read ran out of space goes back to the head of its partner's line.
func (in *Ingester) work(ctx context.Context) {
	for {
		if in.pausedForSpace(ctx) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(spaceRetry):
			}
			continue
		}
		it, ok := in.queue.next(ctx)
		if !ok {
			return
		}
		if in.pausedForSpace(ctx) {
			// Space ran short (or a file paused) while this worker waited
			// for work: the file goes back and waits with the others.
			in.queue.requeueFront(it)
			continue
		}
		// The read side of the gate: the cleanup of a paused ingest's
		// remains waits until no worker is in the middle of a file.
		in.pause.gate.RLock()
		paused := in.process(ctx, it)
		in.pause.gate.RUnlock()
		if paused {
			in.queue.requeueFront(it)
			continue
		}
		in.queue.done(it)
	}
}

// FileComplete tells the ingester that an embedded server has renamed a
// finished upload into place; relPath is relative to the partner's home
// ("inbox/welcome/orders.csv", "templates/x.tmpl"). The file is taken at
// once, without waiting for the quiet period, unless the partner's
// completion rule asks for more (complete = rename or marker) or a list
// waits for its template.
func (in *Ingester) FileComplete(partner, relPath string) {
	in.signal(partner, relPath, arrivedUpload)
}

// FileRenamed tells the ingester that a client renamed a temporary name
// (a dotfile, .part, .filepart...) to relPath through an embedded server:
// the client's own "upload finished" signal, which complete = rename
// requires.
func (in *Ingester) FileRenamed(partner, relPath string) {
	in.signal(partner, relPath, arrivedRenamed)
}

// signal hands a server's signal to the watch loop.
func (in *Ingester) signal(partner, relPath string, how arrival) {
	p, ok := in.partners[partner]
	if !ok {
		in.log.Warn("upload finished for an unknown partner", "partner", partner, "path", relPath)
		return
	}
	rel, ok := cleanRel(relPath)
	if !ok || config.IsTempName(rel) {
		return
	}
	in.complMu.Lock()
	in.completions = append(in.completions, completion{workItem{partner: p.cfg.Name, rel: rel}, how})
	in.complMu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// takeCompletions returns the server signals received since the last call.
func (in *Ingester) takeCompletions() []completion {
	in.complMu.Lock()
	defer in.complMu.Unlock()
	c := in.completions
	in.completions = nil
	return c
}

// setArrival records how a file about to be queued came.
func (in *Ingester) setArrival(it workItem, how arrival) {
	in.arrMu.Lock()
	in.arrivals[it] = how
	in.arrMu.Unlock()
}

// takeArrival returns and forgets how a queued file came.
func (in *Ingester) takeArrival(it workItem) arrival {
	in.arrMu.Lock()
	defer in.arrMu.Unlock()
	how := in.arrivals[it]
	delete(in.arrivals, it)
	return how
}
