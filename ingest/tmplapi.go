package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/dropgate/dropgate/store"
)

// TemplateError is a template that was not accepted: the line and column
// of the problem and what to fix, as reports/<name>.tmpl.errors.txt says.
type TemplateError = templateError

// PutTemplate checks and stores a template sent through the API with the
// checks of one dropped into templates/<name>.tmpl (name, size, parse and
// test render); a refusal is a *TemplateError. A good template becomes a
// new version, unless it is byte for byte the latest (created is then
// false), and is also written to the partner's templates/<name>.tmpl, so
// the file a restart reads again is this version rather than an older one.
func (in *Ingester) PutTemplate(ctx context.Context, partnerName, name, src string) (t store.Template, created bool, err error) {
	p := in.partners[partnerName]
	if p == nil {
		return store.Template{}, false, fmt.Errorf("%w %q", ErrUnknownPartner, partnerName)
	}
	if !templateNameRe.MatchString(name) {
		return store.Template{}, false, &templateError{Line: 1, Col: 1,
			Msg: fmt.Sprintf("%q is not a usable template name: use letters, digits, '-', '_' or '.', starting with a letter or digit", name)}
	}
	if len(src) > maxTemplateBytes {
		return store.Template{}, false, &templateError{Line: 1, Col: 1,
			Msg: fmt.Sprintf("the template is larger than %d bytes; a template should be much smaller", maxTemplateBytes)}
	}
	parsed, err := parseTemplate(name, src, p.channels)
	if err != nil {
		return store.Template{}, false, err
	}
	if err := in.bindLinks(parsed); err != nil {
		return store.Template{}, false, err
	}
	latest, err := in.st.LatestTemplate(ctx, p.cfg.Name, name)
	if err == nil && latest.Source == src {
		return latest, false, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Template{}, false, fmt.Errorf("cannot read template %s: %w", name, err)
	}
	saved, err := in.st.SaveTemplate(ctx, store.Template{Partner: p.cfg.Name, Name: name, Channel: parsed.channel,
		Subject: parsedSubject(src), Format: parsed.format, Sender: parsed.sender, Body: templateBody(src), Source: src})
	if err != nil {
		return store.Template{}, false, fmt.Errorf("cannot save template %s: %w", name, err)
	}
	parsed.version = saved.Version
	in.mu.Lock()
	in.templates[saved.ID] = parsed
	in.mu.Unlock()
	// The watcher sees the rename, finds the latest version's bytes and
	// keeps it; a stale report of an earlier bad upload goes too.
	if err := writeAtomic(filepath.Join(p.home, "templates", name+".tmpl"), func(w *bufio.Writer) error {
		_, err := w.WriteString(src)
		return err
	}); err != nil {
		return saved, true, fmt.Errorf("template %s version %d saved, but cannot write it to templates/: %w", name, saved.Version, err)
	}
	removeReport(reportPath(p, "templates/"+name+".tmpl", templateErrorsSuffix))
	in.log.Info("template saved through the API", "partner", p.cfg.Name, "template", name, "version", saved.Version)
	return saved, true, nil
}
