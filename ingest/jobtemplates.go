package ingest

import (
	"context"
	"slices"
	"strings"

	"github.com/dropgate/dropgate/store"
)

// recordTemplates stores with the file's job the template versions its rows
// were rendered from: the folder's (inbox/<template>/) and each one a
// template column named, so the job page tells which version was sent.
func (fj *fileJob) recordTemplates(ctx context.Context) error {
	var refs []store.TemplateRef
	named := 0 // the folder's comes first, the others by name
	if fj.folder != nil {
		refs = append(refs, store.TemplateRef{Name: fj.folder.name, Version: fj.folder.version})
		named = 1
	}
	for _, tl := range fj.templates {
		if tl.t != nil && (fj.folder == nil || tl.t.name != fj.folder.name) {
			refs = append(refs, store.TemplateRef{Name: tl.t.name, Version: tl.t.version})
		}
	}
	if len(refs) == 0 {
		return nil
	}
	slices.SortFunc(refs[named:], func(a, b store.TemplateRef) int { return strings.Compare(a.Name, b.Name) })
	return fj.in.st.SetJobTemplates(ctx, fj.w.JobID(), refs)
}
