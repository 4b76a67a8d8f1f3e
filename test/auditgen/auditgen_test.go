package auditgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/enrich"
)

type line struct {
	Kind, APIVersion, Level, AuditID, Stage, RequestURI, Verb string
	User                                                      struct {
		Username string
		Groups   []string
	}
	SourceIPs                                []string
	UserAgent                                string
	ObjectRef                                *struct{ Resource, Namespace, Name, APIGroup, Subresource string }
	ResponseStatus                           struct{ Code int }
	RequestReceivedTimestamp, StageTimestamp time.Time
	Annotations                              map[string]string
}

func generate(t *testing.T, opts Options) ([]byte, Stats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := Write(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), st
}

// TestStatsMatchTheLog recounts the generated log with encoding/json and compares with
// the Stats the generator returned, and checks every line is an audit event for enrich.
func TestStatsMatchTheLog(t *testing.T) {
	opts := Options{Seed: 7, Records: 20000, Nodes: 50, Duration: 30 * time.Minute}
	data, st := generate(t, opts)
	if st.Bytes != int64(len(data)) {
		t.Errorf("Stats.Bytes %d, wrote %d", st.Bytes, len(data))
	}
	e, err := enrich.New(enrich.Options{Summary: true})
	if err != nil {
		t.Fatal(err)
	}
	w := e.NewWorker()
	byUser, byCode, byVerb, unauth := map[string]int{}, map[int]int{}, map[string]int{}, map[string]int{}
	long, n := 0, 0
	var first, last time.Time
	levels, stages, userTypes := map[string]int{}, map[string]int{}, map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		n++
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d: %v: %s", n, err, sc.Text())
		}
		if l.Kind != "Event" || l.APIVersion != "audit.k8s.io/v1" || l.AuditID == "" || len(l.SourceIPs) != 1 {
			t.Fatalf("line %d not shaped like an audit event: %s", n, sc.Text())
		}
		byUser[l.User.Username]++
		byCode[l.ResponseStatus.Code]++
		byVerb[l.Verb]++
		levels[l.Level]++
		stages[l.Stage]++
		if l.ResponseStatus.Code == 401 {
			unauth[l.SourceIPs[0]]++
			if l.User.Username != "" || l.Annotations != nil {
				t.Errorf("line %d: a 401 has a user or authorization annotations", n)
			}
		}
		if l.StageTimestamp.Before(l.RequestReceivedTimestamp) {
			t.Errorf("line %d: stage before received", n)
		}
		if first.IsZero() || l.RequestReceivedTimestamp.Before(first) {
			first = l.RequestReceivedTimestamp
		}
		if l.RequestReceivedTimestamp.After(last) {
			last = l.RequestReceivedTimestamp
		}
		res := w.Text(sc.Bytes())
		if res.Err != nil || len(res.Records) != 1 || res.Records[0].Err != nil {
			t.Fatalf("line %d: enrich does not take it: %v", n, res.Err)
		}
		s := &res.Records[0].Summary
		if s.LongRunning {
			long++
		}
		if !s.HasDuration {
			t.Errorf("line %d: no duration", n)
		}
		userTypes[s.UserType]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != st.Records || n != opts.Records {
		t.Errorf("lines %d, Stats.Records %d, asked %d", n, st.Records, opts.Records)
	}
	eqMap(t, "by user", byUser, st.ByUser)
	eqMap(t, "by code", byCode, st.ByCode)
	eqMap(t, "by verb", byVerb, st.ByVerb)
	eqMap(t, "401 by IP", unauth, st.Unauthorized)
	if long != st.LongRunning {
		t.Errorf("long-running: enrich says %d, Stats %d", long, st.LongRunning)
	}
	if !first.Equal(st.First) || !last.Equal(st.Last) {
		t.Errorf("range %v..%v, Stats %v..%v", first, last, st.First, st.Last)
	}
	// The log must have what the reports look for.
	for _, c := range []int{200, 201, 101, 401, 403, 404, 409, 422, 429} {
		if byCode[c] == 0 {
			t.Errorf("no status %d in %d records", c, n)
		}
	}
	for _, v := range []string{"get", "list", "watch", "create", "update", "patch", "delete"} {
		if byVerb[v] == 0 {
			t.Errorf("no verb %s", v)
		}
	}
	for _, ut := range []string{"node", "serviceaccount", "system", "user", "anonymous", "unauthenticated"} {
		if userTypes[ut] == 0 {
			t.Errorf("no user type %s", ut)
		}
	}
	if levels["RequestResponse"] == 0 || stages["ResponseStarted"] == 0 {
		t.Errorf("levels %v stages %v", levels, stages)
	}
	if len(byUser) < 50 {
		t.Errorf("only %d users with 50 nodes", len(byUser))
	}
	// Long-running requests seen at their end began before the window (First may be
	// earlier than Start); the last request ends the window.
	end := DefaultStart.Add(opts.Duration)
	if st.Last.After(end) || st.Last.Before(end.Add(-time.Minute)) {
		t.Errorf("last request %v, window ends %v", st.Last, end)
	}
}

func eqMap[K comparable](t *testing.T, what string, got, want map[K]int) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d keys in the log, %d in Stats", what, len(got), len(want))
	}
	for k, v := range got {
		if want[k] != v {
			t.Errorf("%s[%v]: log %d, Stats %d", what, k, v, want[k])
		}
	}
}

func TestDeterministic(t *testing.T) {
	a, _ := generate(t, Options{Seed: 3, Records: 2000})
	b, _ := generate(t, Options{Seed: 3, Records: 2000})
	c, _ := generate(t, Options{Seed: 4, Records: 2000})
	if !bytes.Equal(a, b) {
		t.Error("same seed, different output")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds, same output")
	}
}

// TestBurst checks the request rate of the burst window (60-70% of the span) is about
// three times the rest's.
func TestBurst(t *testing.T) {
	opts := Options{Seed: 1, Records: 30000, Duration: time.Hour}
	data, _ := generate(t, opts)
	in, out := 0, 0
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ev line
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Stage == "ResponseComplete" && ev.Verb == "watch" {
			continue // began before its line's time
		}
		x := ev.RequestReceivedTimestamp.Sub(DefaultStart).Hours()
		if x >= 0.6 && x < 0.7 {
			in++
		} else if x >= 0 && x < 0.6 {
			out++
		}
	}
	ratio := (float64(in) / 0.1) / (float64(out) / 0.6)
	if ratio < 2.5 || ratio > 3.5 {
		t.Errorf("burst rate ratio %.2f, want about 3 (in %d, before %d)", ratio, in, out)
	}
}

func TestBytesBound(t *testing.T) {
	const want = 2 << 20
	data, st := generate(t, Options{Seed: 9, Bytes: want, Duration: 10 * time.Minute})
	if int64(len(data)) < want || len(data) > want+64<<10 {
		t.Errorf("wrote %d bytes for %d", len(data), want)
	}
	if span := st.Last.Sub(DefaultStart); span < 9*time.Minute || span > 11*time.Minute {
		t.Errorf("last request %v after Start, want about 10m", span)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{}, {Records: -1}, {Records: 1, Nodes: -2}, {Bytes: -5}} {
		if _, err := Write(io.Discard, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestWriteError(t *testing.T) {
	if _, err := Write(failWriter{}, Options{Records: 5000}); err == nil || !strings.Contains(err.Error(), "closed pipe") {
		t.Errorf("error %v", err)
	}
}

func BenchmarkWrite(b *testing.B) {
	var n int64
	for b.Loop() {
		st, err := Write(io.Discard, Options{Seed: 1, Records: 10000})
		if err != nil {
			b.Fatal(err)
		}
		n = st.Bytes
	}
	b.SetBytes(n)
}
