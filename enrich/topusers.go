package enrich

import (
	"slices"
	"sync"
	"time"
)

// The rounds in which topUsers decides who gets a user_top value of their own.
const (
	topRoundRequests = 10000       // a round ends after this many counted requests,
	topRoundTime     = time.Minute // or this long, whichever comes first
	topRoundUsers    = 4096        // users counted in one round; later ones wait
	topMinShare      = 100         // named: at least 1/topMinShare of a round's requests,
	topMinRequests   = 10          // and at least this many
	otherUser        = "other"     // the value of everyone else
	unnamedCheck     = 256         // requests between two looks at the clock
)

// topUsers gives the users making the most requests a user_top value of their own and
// everyone else "other", with at most max names for the life of the filter instance:
// a Prometheus series, once created by log_to_metrics, stays until Fluent Bit
// restarts, so a bound on series must be a bound on names ever given, not on names
// at any one time. Rounds count the requests of the users not named yet; at a round's
// end the largest users with at least 1% of its requests (and 10) are named, biggest
// first, while names are left. A user once named stays named. Safe for concurrent use: Fluent Bit runs one
// filter instance in every input thread that matches it.
type topUsers struct {
	max int

	mu     sync.Mutex
	named  map[string]struct{}
	round  map[string]int
	n      int       // requests counted this round
	start  time.Time // of this round
	now    func() time.Time
	perRnd int // topRoundRequests; smaller in tests
}

func newTopUsers(max int) *topUsers {
	return &topUsers{max: max, named: map[string]struct{}{}, round: map[string]int{},
		now: time.Now, perRnd: topRoundRequests}
}

// isNamed counts one request of user and reports whether user is its own user_top
// value (else it is "other").
func (t *topUsers) isNamed(user []byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.named[string(user)]; ok {
		return true
	}
	if len(t.named) >= t.max {
		return false // every name is given: nothing left to count for
	}
	if t.n == 0 {
		t.start = t.now()
	}
	t.n++
	if c, ok := t.round[string(user)]; ok {
		t.round[string(user)] = c + 1
	} else if len(t.round) < topRoundUsers {
		t.round[string(user)] = 1
	}
	if t.n >= t.perRnd || (t.n%unnamedCheck == 0 && t.now().Sub(t.start) >= topRoundTime) {
		t.endRound()
		_, ok := t.named[string(user)]
		return ok
	}
	return false
}

// endRound names the round's largest users, then starts the next round.
func (t *topUsers) endRound() {
	type uc struct {
		user string
		n    int
	}
	var big []uc
	for u, c := range t.round {
		if c >= topMinRequests && c*topMinShare >= t.n {
			big = append(big, uc{u, c})
		}
	}
	slices.SortFunc(big, func(a, b uc) int {
		if a.n != b.n {
			return b.n - a.n
		}
		if a.user < b.user {
			return -1
		}
		return 1
	})
	for _, b := range big {
		if len(t.named) >= t.max {
			break
		}
		t.named[b.user] = struct{}{}
	}
	clear(t.round)
	t.n = 0
}
