package sender

import "github.com/dropgate/dropgate/store"

// scheduler chooses which runnable job a channel serves next: any
// transactional job (oldest first) before bulk ones; among bulk jobs the
// partners take turns, a batch each, oldest job first within a partner, so
// one partner's million-row file cannot starve another's hundred rows.
type scheduler struct {
	lastPartner string // the bulk partner served last
}

// next picks from jobs, which come ordered by priority, then id.
func (s *scheduler) next(jobs []store.RunnableJob) (store.RunnableJob, bool) {
	if len(jobs) == 0 {
		return store.RunnableJob{}, false
	}
	if jobs[0].Priority < store.PriorityBulk {
		return jobs[0], true
	}
	// The partner that follows the last one served, in name order, wrapping
	// around; each partner's first (oldest) job.
	var first, after *store.RunnableJob
	for i := range jobs {
		j := &jobs[i]
		if first == nil || j.Partner < first.Partner {
			first = j
		}
		if j.Partner > s.lastPartner && (after == nil || j.Partner < after.Partner) {
			after = j
		}
	}
	pick := first
	if after != nil {
		pick = after
	}
	s.lastPartner = pick.Partner
	return *pick, true
}
