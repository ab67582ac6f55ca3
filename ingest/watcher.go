package ingest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// renameQuiet is how long a file renamed in from a temporary name in the
// same folder must stay unchanged before it is taken. The rename is the
// writer's "done" signal; the short wait only catches the rare writer that
// keeps writing after its rename.
const renameQuiet = 50 * time.Millisecond

// pendingFile is a file seen changing that is not yet known to be complete.
type pendingFile struct {
	item  workItem
	abs   string
	size  int64
	mtime time.Time
	since time.Time     // when size and mtime were last seen to change
	quiet time.Duration // how long they must stay the same
}

// watchLoop follows the watcher's events until ctx ends. Files written in
// place are taken once their size and mtime have been stable for the quiet
// period; a temporary name renamed to a real one is taken almost at once.
func (in *Ingester) watchLoop(ctx context.Context) error {
	pending := map[workItem]*pendingFile{}
	in.rescan(pending)
	tick := time.NewTicker(min(max(in.quiet/4, 10*time.Millisecond), 250*time.Millisecond))
	defer tick.Stop()
	var last fsnotify.Event
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-in.watcher.Events:
			if !ok {
				return nil
			}
			in.handleEvent(ev, last, pending)
			last = ev
		case err, ok := <-in.watcher.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				in.log.Warn("file watcher overflowed; rescanning every inbox")
				in.rescan(pending)
				continue
			}
			in.log.Error("file watcher error", "err", err)
		case <-tick.C:
			in.checkPending(ctx, pending)
		}
	}
}

// handleEvent reacts to one event; prev is the event before it.
func (in *Ingester) handleEvent(ev, prev fsnotify.Event, pending map[workItem]*pendingFile) {
	in.log.Debug("file event", "event", ev.String())
	p, rel, ok := in.locate(ev.Name)
	if !ok {
		return
	}
	item := workItem{partner: p.cfg.Name, rel: rel}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		delete(pending, item)
		if ev.Has(fsnotify.Rename) {
			// A watched subfolder renamed away: fsnotify keeps no watch on it.
			in.watcher.Remove(ev.Name)
		}
		return
	}
	if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Chmod) {
		return
	}
	fi, err := os.Stat(ev.Name)
	if err != nil {
		delete(pending, item)
		return
	}
	if fi.IsDir() {
		if ev.Has(fsnotify.Create) && isTemplateFolder(rel) {
			in.watchFolder(p, ev.Name, pending)
		}
		return
	}
	if config.IsTempName(rel) || !watchedFile(rel) {
		return
	}
	now := time.Now()
	pf, seen := pending[item]
	if !seen {
		pf = &pendingFile{item: item, abs: ev.Name, quiet: in.quiet}
		pending[item] = pf
	}
	pf.size, pf.mtime, pf.since = fi.Size(), fi.ModTime(), now
	switch {
	case ev.Has(fsnotify.Create) && prev.Has(fsnotify.Rename) && config.IsTempName(prev.Name) &&
		filepath.Dir(prev.Name) == filepath.Dir(ev.Name):
		// inotify reports a rename as the old name's Rename immediately
		// followed by the new name's Create: a temporary name renamed to
		// its real one in the same folder, the usual "upload done" signal.
		pf.quiet = min(renameQuiet, in.quiet)
	case ev.Has(fsnotify.Write):
		pf.quiet = in.quiet
	}
}

// checkPending queues the files whose size and mtime stayed the same for
// their quiet period, templates first.
//
// A list in inbox/<name>/ waits while templates/<name>.tmpl is still
// settling and no version of it is stored yet: a template written in place
// waits out the quiet period, and a list renamed into place meanwhile
// (taken at once) would otherwise be read first and rejected for naming a
// template that does not exist. With a version stored, the list goes on
// with it, as it would have a moment earlier.
func (in *Ingester) checkPending(ctx context.Context, pending map[workItem]*pendingFile) {
	now := time.Now()
	settling := map[templateKey]bool{} // templates still pending
	for _, templates := range []bool{true, false} {
		for item, pf := range pending {
			if isTemplateItem(item) != templates {
				continue
			}
			if !templates && in.waitsForTemplate(ctx, item, settling) {
				continue
			}
			fi, err := os.Stat(pf.abs)
			if err != nil || fi.IsDir() {
				delete(pending, item)
				continue
			}
			if fi.Size() != pf.size || !fi.ModTime().Equal(pf.mtime) {
				pf.size, pf.mtime, pf.since = fi.Size(), fi.ModTime(), now
				pf.quiet = in.quiet
			} else if now.Sub(pf.since) >= pf.quiet {
				delete(pending, item)
				in.queue.push(item)
				continue
			}
			if templates {
				settling[templateKey{item.partner, strings.TrimSuffix(filepath.Base(item.rel), ".tmpl")}] = true
			}
		}
	}
}

// templateKey names one partner's template.
type templateKey struct{ partner, name string }

// waitsForTemplate reports whether a list in inbox/<name>/ must wait for
// templates/<name>.tmpl, which is settling and has no stored version.
func (in *Ingester) waitsForTemplate(ctx context.Context, item workItem, settling map[templateKey]bool) bool {
	parts := strings.Split(item.rel, "/")
	if len(parts) != 3 || !settling[templateKey{item.partner, parts[1]}] {
		return false
	}
	_, err := in.st.LatestTemplate(ctx, item.partner, parts[1])
	return errors.Is(err, store.ErrNotFound)
}

// isTemplateItem reports whether the file is in the partner's templates/.
func isTemplateItem(it workItem) bool {
	return strings.HasPrefix(it.rel, config.TemplatesDir+"/")
}

// rescan looks at every inbox and template folder: files found there were
// dropped while nobody watched (before start, or lost in an overflow).
// Templates go first, so that the recipient files that use them find them.
// A file unchanged for the quiet period is queued at once; a younger one
// waits like any file seen changing.
func (in *Ingester) rescan(pending map[workItem]*pendingFile) {
	names := make([]string, 0, len(in.partners))
	for name := range in.partners {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := in.partners[name]
		in.scanFolder(p, filepath.Join(p.home, config.TemplatesDir), pending)
	}
	for _, name := range names {
		p := in.partners[name]
		inbox := filepath.Join(p.home, config.InboxDir)
		entries, err := os.ReadDir(inbox)
		if err != nil {
			in.log.Error("cannot read inbox", "partner", name, "err", err)
			continue
		}
		for _, e := range entries {
			if e.IsDir() && !config.IsTempName(e.Name()) {
				in.watchFolder(p, filepath.Join(inbox, e.Name()), pending)
			}
		}
		in.scanFolder(p, inbox, pending)
	}
}

// watchFolder starts watching a template folder in an inbox, then scans it:
// files written into it before the watch began give no event.
func (in *Ingester) watchFolder(p *partner, dir string, pending map[workItem]*pendingFile) {
	if err := in.watcher.Add(dir); err != nil {
		in.log.Error("cannot watch folder", "partner", p.cfg.Name, "folder", dir, "err", err)
	}
	in.scanFolder(p, dir, pending)
}

// scanFolder considers every file of one folder.
func (in *Ingester) scanFolder(p *partner, dir string, pending map[workItem]*pendingFile) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		in.log.Error("cannot read folder", "partner", p.cfg.Name, "folder", dir, "err", err)
		return
	}
	now := time.Now()
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		abs := filepath.Join(dir, e.Name())
		_, rel, ok := in.locate(abs)
		if !ok || config.IsTempName(rel) || !watchedFile(rel) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		item := workItem{partner: p.cfg.Name, rel: rel}
		if in.queue.busy(item) {
			continue
		}
		if now.Sub(fi.ModTime()) >= in.quiet {
			delete(pending, item)
			in.queue.push(item)
			continue
		}
		if _, seen := pending[item]; !seen {
			pending[item] = &pendingFile{item: item, abs: abs, size: fi.Size(), mtime: fi.ModTime(), since: now, quiet: in.quiet}
		}
	}
}

// locate maps an absolute path to its partner and its path in the home.
func (in *Ingester) locate(abs string) (*partner, string, bool) {
	rel, err := filepath.Rel(in.root, abs)
	if err != nil {
		return nil, "", false
	}
	name, rest, ok := strings.Cut(filepath.ToSlash(rel), "/")
	if !ok {
		return nil, "", false
	}
	p, ok := in.partners[name]
	if !ok {
		return nil, "", false
	}
	return p, rest, true
}

// isTemplateFolder reports whether rel is inbox/<template>.
func isTemplateFolder(rel string) bool {
	parts := strings.Split(rel, "/")
	return len(parts) == 2 && parts[0] == config.InboxDir && !config.IsTempName(parts[1])
}

// watchedFile reports whether rel is where ingest takes files from:
// inbox/<file>, inbox/<template>/<file> or templates/<file>.
func watchedFile(rel string) bool {
	parts := strings.Split(rel, "/")
	switch {
	case len(parts) == 2 && (parts[0] == config.InboxDir || parts[0] == config.TemplatesDir):
		return true
	case len(parts) == 3 && parts[0] == config.InboxDir && !config.IsTempName(parts[1]):
		return true
	}
	return false
}

// cleanRel checks a home-relative path from a server and returns it in the
// watcher's form.
func cleanRel(rel string) (string, bool) {
	rel = strings.TrimPrefix(filepath.ToSlash(filepath.Clean("/"+rel)), "/")
	if rel == "" || strings.Contains(rel, "..") || !watchedFile(rel) {
		return "", false
	}
	return rel, true
}
