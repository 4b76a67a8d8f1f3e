package enrich

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// metricsEvent is a Metadata-level event of stage, verb and code by user.
func metricsEvent(stage, verb, user string, code int, query string) string {
	u := `"user":{"username":"` + user + `"}`
	if user == "" {
		u = `"user":{}`
	}
	status := ""
	if code > 0 {
		status = fmt.Sprintf(`"responseStatus":{"code":%d},`, code)
	}
	return `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"m-` + stage + verb + `","stage":"` + stage + `",` +
		`"requestURI":"/api/v1/namespaces/default/pods` + query + `","verb":"` + verb + `",` + u + `,` +
		`"objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},` + status +
		`"requestReceivedTimestamp":"2026-11-20T10:15:30.000000Z","stageTimestamp":"2026-11-20T10:15:30.250000Z"}`
}

// TestMetricsField: "metrics" marks the one record that counts each request, as
// kubetrail audit's default stage selection does, and says whether its duration is
// the server's latency.
func TestMetricsField(t *testing.T) {
	opts := defaults()
	opts.Metrics, opts.TopUsers = true, 5
	for _, c := range []struct {
		stage, verb, user string
		code              int
		query, want       string
	}{
		{"RequestReceived", "get", "jane", 0, "", ""},
		{"ResponseComplete", "get", "jane", 200, "", "timed"},
		{"ResponseComplete", "list", "jane", 422, "", "timed"},
		{"ResponseStarted", "watch", "jane", 200, "?watch=true", ""},         // the stream began: counted when it ends
		{"ResponseComplete", "watch", "jane", 200, "?watch=true", "counted"}, // long-running: not a latency
		{"ResponseComplete", "list", "jane", 200, "?watch=1", "counted"},
		{"ResponseStarted", "get", "", 401, "", "timed"}, // a 401 is written at this stage only
		// A failed long-running request has both stages: counted once, at the end.
		{"ResponseStarted", "watch", "jane", 403, "?watch=true", ""},
		{"ResponseComplete", "watch", "jane", 403, "?watch=true", "counted"},
		{"ResponseStarted", "watch", "jane", 429, "?watch=true", ""},
		{"ResponseStarted", "get", "jane", 404, "/p/log?follow=true", ""},
		{"Panic", "create", "jane", 500, "", "timed"},
	} {
		r := one(t, opts, metricsEvent(c.stage, c.verb, c.user, c.code, c.query))
		got, _ := r["metrics"].(string)
		if got != c.want {
			t.Errorf("%s %s %d%s: metrics = %q, want %q", c.stage, c.verb, c.code, c.query, got, c.want)
		}
		_, hasTop := r["user_top"]
		if wantTop := c.want != "" && c.user != ""; hasTop != wantTop {
			t.Errorf("%s %s %d: user_top present %v, want %v", c.stage, c.verb, c.code, hasTop, wantTop)
		}
		if FinalStage([]byte(c.stage), int64(c.code), []byte(c.user)) != (c.want != "") {
			t.Errorf("FinalStage(%s, %d) disagrees with the record", c.stage, c.code)
		}
	}
	// A negative duration (clock trouble) is no latency.
	neg := strings.Replace(metricsEvent("ResponseComplete", "get", "jane", 200, ""), `"stageTimestamp":"2026-11-20T10:15:30.250000Z"`, `"stageTimestamp":"2026-11-20T10:15:29.000000Z"`, 1)
	if r := one(t, opts, neg); r["metrics"] != "counted" || r["duration_negative"] != true {
		t.Errorf("negative duration: metrics %v, duration_negative %v; want counted, true", r["metrics"], r["duration_negative"])
	}
	// Off by default: neither field.
	r := one(t, defaults(), metricsEvent("ResponseComplete", "get", "jane", 200, ""))
	if _, ok := r["metrics"]; ok {
		t.Error("metrics written with Metrics off")
	}
	opts.TopUsers = 0
	r = one(t, opts, metricsEvent("ResponseComplete", "get", "jane", 200, ""))
	if _, ok := r["user_top"]; ok || r["metrics"] != "timed" {
		t.Errorf("TopUsers 0: user_top %v, metrics %v; want no user_top, metrics timed", r["user_top"], r["metrics"])
	}
}

// zipfUsers draws n requests from users user-0..user-(k-1), user-i about twice as
// often as user-(2i+1): a few heavy clients and a long tail, as in a big cluster
// (the controllers, then thousands of kubelets).
func zipfUsers(n, k int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 1))
	z := rand.NewZipf(r, 1.2, 1, uint64(k-1))
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user-%d", z.Uint64())
	}
	return out
}

// TestTopUsersBounded: whatever comes, user_top takes at most max+1 values (the
// names and "other"); the heaviest users are the ones named; a name stays.
func TestTopUsersBounded(t *testing.T) {
	const max = 20
	tu := newTopUsers(max)
	values := map[string]int{}
	named := map[string]bool{}
	reqs := zipfUsers(500_000, 5000, 7)
	for i, u := range reqs {
		v := otherUser
		if tu.isNamed([]byte(u)) {
			v = u
			named[u] = true
		} else if named[u] {
			t.Fatalf("request %d: %s was named and is now other", i, u)
		}
		values[v]++
	}
	if len(values) > max+1 {
		t.Fatalf("user_top took %d values, want at most %d", len(values), max+1)
	}
	if len(named) == 0 {
		t.Fatal("nobody named after 500000 requests")
	}
	// The Zipf weights fall with the index: user-0 .. user-4 make the most requests.
	for i := range 5 {
		if u := fmt.Sprintf("user-%d", i); !named[u] {
			t.Errorf("%s (among the 5 heaviest) not named; named: %v", u, keys(named))
		}
	}
	t.Logf("%d values: %d named, %d of %d requests under other", len(values), len(named), values[otherUser], len(reqs))
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestTopUsersLateHeavyUser: a heavy user that appears after the first rounds gets
// a name while names are left; once they are all given, newcomers are other.
func TestTopUsersLateHeavyUser(t *testing.T) {
	tu := newTopUsers(2)
	tu.perRnd = 1000
	feed := func(n int, users ...string) {
		for i := range n {
			tu.isNamed([]byte(users[i%len(users)]))
		}
	}
	feed(1000, "a")
	if !tu.isNamed([]byte("a")) {
		t.Fatal("a made every request of a round and is not named")
	}
	// 1000 tail users, one request each: nobody reaches 1%.
	for i := range 1000 {
		tu.isNamed([]byte(fmt.Sprintf("tail-%d", i)))
	}
	if len(tu.named) != 1 {
		t.Fatalf("tail users named: %v", tu.named)
	}
	feed(2000, "a", "b") // a's requests no longer count: b's 1000 make a round
	if !tu.isNamed([]byte("b")) {
		t.Fatal("b, every counted request of a round, not named")
	}
	feed(1000, "c")
	if tu.isNamed([]byte("c")) {
		t.Fatal("c named beyond max 2")
	}
}

// TestTopUsersRoundTime: a quiet cluster's round ends after topRoundTime, not only
// after topRoundRequests requests.
func TestTopUsersRoundTime(t *testing.T) {
	tu := newTopUsers(5)
	now := time.Unix(1000, 0)
	tu.now = func() time.Time { return now }
	for i := range unnamedCheck - 1 {
		tu.isNamed([]byte("quiet"))
		if i == 0 {
			now = now.Add(topRoundTime)
		}
	}
	if !tu.isNamed([]byte("quiet")) {
		t.Fatalf("after %d requests over %s, quiet is not named", unnamedCheck, topRoundTime)
	}
}

// TestTopUsersConcurrent: Fluent Bit calls one filter instance from several input
// threads (go test -race checks the locking); the bound holds.
func TestTopUsersConcurrent(t *testing.T) {
	tu := newTopUsers(10)
	tu.perRnd = 2000
	var wg sync.WaitGroup
	var mu sync.Mutex
	values := map[string]bool{}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[string]bool{}
			for _, u := range zipfUsers(50_000, 2000, uint64(g)) {
				if tu.isNamed([]byte(u)) {
					local[u] = true
				}
			}
			mu.Lock()
			for u := range local {
				values[u] = true
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(values) > 10 || len(values) == 0 {
		t.Errorf("%d names: %s", len(values), strings.Join(keys(values), ","))
	}
}
