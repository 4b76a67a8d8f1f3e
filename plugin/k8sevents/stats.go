package k8sevents

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubetrail/kubetrail/plugin/flblog"
)

type counters struct {
	emitted, duplicates, filtered, expired, pruned atomic.Uint64
	lists, relists, watches, bookmarks             atomic.Uint64
	apiErrors, dbErrors, encodeErrors              atomic.Uint64
	redelivered                                    atomic.Uint64

	// newest is the time (Unix ns) of the newest Event queued for Fluent Bit: lag.
	newest atomic.Int64

	apiErrMu    sync.Mutex
	apiErrCodes map[string]uint64 // by HTTP status code, "network"
}

// apiError counts a failed API request by its code (apiErrorCode).
func (c *counters) apiError(code string) {
	c.apiErrors.Add(1)
	c.apiErrMu.Lock()
	defer c.apiErrMu.Unlock()
	if c.apiErrCodes == nil {
		c.apiErrCodes = make(map[string]uint64)
	}
	c.apiErrCodes[code]++
}

// apiErrorsByCode returns a copy of the counts by code.
func (c *counters) apiErrorsByCode() map[string]uint64 {
	c.apiErrMu.Lock()
	defer c.apiErrMu.Unlock()
	out := make(map[string]uint64, len(c.apiErrCodes))
	for k, v := range c.apiErrCodes {
		out[k] = v
	}
	return out
}

// sawEvent moves newest forward to t.
func (c *counters) sawEvent(t time.Time) {
	ns := t.UnixNano()
	for {
		old := c.newest.Load()
		if ns <= old || c.newest.CompareAndSwap(old, ns) {
			return
		}
	}
}

// Stats are an instance's counts since it started.
type Stats struct {
	Emitted      uint64 // records Fluent Bit took
	Duplicates   uint64 // Event versions already emitted (re-lists, restarts)
	Filtered     uint64 // dropped by include/exclude
	Expired      uint64 // older than kube_retention_time
	Pruned       uint64 // database rows forgotten by retention
	Lists        uint64 // LIST passes (each may be several paginated requests)
	Relists      uint64 // LIST passes forced by 410 Gone
	Watches      uint64 // WATCH requests
	Bookmarks    uint64
	APIErrors    uint64
	DBErrors     uint64
	EncodeErrors uint64
	Redelivered  uint64 // batches handed to Fluent Bit again (its ring buffer was full)
}

// Stats returns the counts so far.
func (in *Input) Stats() Stats {
	c := &in.stats
	return Stats{
		Emitted: c.emitted.Load(), Duplicates: c.duplicates.Load(), Filtered: c.filtered.Load(),
		Expired: c.expired.Load(), Pruned: c.pruned.Load(), Lists: c.lists.Load(),
		Relists: c.relists.Load(), Watches: c.watches.Load(), Bookmarks: c.bookmarks.Load(),
		APIErrors: c.apiErrors.Load(), DBErrors: c.dbErrors.Load(), EncodeErrors: c.encodeErrors.Load(),
		Redelivered: c.redelivered.Load(),
	}
}

func (s Stats) String() string {
	return fmt.Sprintf("emitted=%d duplicates=%d filtered=%d expired=%d pruned=%d lists=%d relists=%d watches=%d bookmarks=%d api_errors=%d db_errors=%d encode_errors=%d redelivered=%d",
		s.Emitted, s.Duplicates, s.Filtered, s.Expired, s.Pruned, s.Lists, s.Relists, s.Watches, s.Bookmarks, s.APIErrors, s.DBErrors, s.EncodeErrors, s.Redelivered)
}

// statusLog logs state changes, not every retry: an error is logged when it first
// appears or changes, and its recovery once.
type statusLog struct {
	log  flblog.Logger
	mu   sync.Mutex
	last map[string]string // by area: the error text now failing, "" if fine
}

func (s *statusLog) set(area string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = make(map[string]string)
	}
	prev := s.last[area]
	switch {
	case err == nil && prev != "":
		s.log.Infof("%s: recovered", area)
		s.last[area] = ""
	case err != nil && err.Error() != prev:
		s.log.Errorf("%v", err)
		s.last[area] = err.Error()
	}
}
