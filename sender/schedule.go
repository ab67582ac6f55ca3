package sender

import "github.com/dropgate/dropgate/store"

// scheduler chooses which runnable jobs a channel serves next: the
// transactional ones (API sends, workflow runs: oldest first) before bulk
// ones; among bulk jobs the partners take turns, a batch each, so one
// partner's million-row file cannot starve another's hundred rows.
//
// It returns a group of jobs, claimed from in order within one batch: all
// transactional jobs, or all of one partner's bulk jobs. Every API request
// is a job of its own, and serving one job per batch made a burst of
// one-message requests go out at the pace of the claims.
type scheduler struct {
	lastPartner string // the bulk partner served last
}

// next picks from jobs, which come ordered by priority, then id; the group
// keeps that order.
func (s *scheduler) next(jobs []store.RunnableJob) ([]store.RunnableJob, bool) {
	if len(jobs) == 0 {
		return nil, false
	}
	if jobs[0].Priority < store.PriorityBulk {
		n := 1
		for n < len(jobs) && jobs[n].Priority == jobs[0].Priority {
			n++
		}
		return jobs[:n], true
	}
	// The partner that follows the last one served, in name order, wrapping
	// around.
	first, after := "", ""
	for i := range jobs {
		p := jobs[i].Partner
		if first == "" || p < first {
			first = p
		}
		if p > s.lastPartner && (after == "" || p < after) {
			after = p
		}
	}
	pick := first
	if after != "" {
		pick = after
	}
	s.lastPartner = pick
	var group []store.RunnableJob
	for _, j := range jobs {
		if j.Partner == pick {
			group = append(group, j)
		}
	}
	return group, true
}
