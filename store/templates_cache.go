package store

import "sync"

// templateCache keeps the newest version of each template read, so that
// an API send (which renders the partner's latest template) does not read
// the database for it: that read was a sixth of a single send's CPU time
// (server/admin/BENCHMARKS.md). SaveTemplate, the only writer of
// templates, drops the entry after its commit; gen keeps a read that
// raced with a save from storing what it read before the save.
type templateCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[[2]string]Template
}

func (c *templateCache) get(partner, name string) (Template, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[[2]string{partner, name}]
	return t, c.gen, ok
}

// put stores t if no template was saved since gen was read.
func (c *templateCache) put(t Template, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil {
		c.m = map[[2]string]Template{}
	}
	c.m[[2]string{t.Partner, t.Name}] = t
}

// saved forgets a template after a new version of it was committed.
func (c *templateCache) saved(partner, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, [2]string{partner, name})
}
