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

// next picks from jobs, which come ordered by id (within priority); the
// group keeps that order. urgent says the group is transactional
// (store.UrgentSource), for the channel's urgent lane.
func (s *scheduler) next(jobs []store.RunnableJob) (group []store.RunnableJob, urgent bool) {
	if len(jobs) == 0 {
		return nil, false
	}
	if u := urgentJobs(jobs); len(u) > 0 {
		return u, true
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
	for _, j := range jobs {
		if j.Partner == pick {
			group = append(group, j)
		}
	}
	return group, false
}

// urgentJobs returns the transactional jobs of jobs, in their order.
func urgentJobs(jobs []store.RunnableJob) []store.RunnableJob {
	var u []store.RunnableJob
	for _, j := range jobs {
		if j.Urgent {
			u = append(u, j)
		}
	}
	return u
}
