package enrich

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// Record.ID is what the k8s_audit filter's dedup keys on: equal for the same
// (auditID, stage, stageTimestamp) whatever the input's form, different when any of
// them differs, unambiguous, stable across the items of one call.
func TestRecordID(t *testing.T) {
	e, _ := New(defaults())
	w := e.NewWorker()
	one := func(line string) []byte {
		t.Helper()
		res := w.Text([]byte(line))
		if res.Err != nil || len(res.Records) != 1 {
			t.Fatalf("%s: %v", line, res.Err)
		}
		return bytes.Clone(res.Records[0].ID)
	}
	ev := `{"kind":"Event","auditID":"a1","stage":"ResponseComplete","stageTimestamp":"2026-01-02T03:04:05.000001Z","verb":"get"}`
	base := one(ev)
	if len(base) == 0 {
		t.Fatal("no ID")
	}
	// The same event: other fields, order and the input's form do not matter.
	for _, same := range []string{
		`{"stageTimestamp":"2026-01-02T03:04:05.000001Z","stage":"ResponseComplete","auditID":"a1","verb":"list","user":{"username":"x"}}`,
		`host-1 ` + ev,
	} {
		if got := one(same); !bytes.Equal(got, base) {
			t.Errorf("%s: ID %q, want %q", same, got, base)
		}
	}
	var m map[string]any
	json.Unmarshal([]byte(ev), &m)
	packed, _ := msgpack.Marshal(m)
	if res := w.Map(packed); res.Err != nil || !bytes.Equal(res.Records[0].ID, base) {
		t.Errorf("map record: ID %q, %v", res.Records[0].ID, res.Err)
	}
	// Any of the three differs: another ID (a client may set Audit-ID, so auditID and
	// stage alone can repeat).
	for _, other := range []string{
		`{"auditID":"a2","stage":"ResponseComplete","stageTimestamp":"2026-01-02T03:04:05.000001Z"}`,
		`{"auditID":"a1","stage":"ResponseStarted","stageTimestamp":"2026-01-02T03:04:05.000001Z"}`,
		`{"auditID":"a1","stage":"ResponseComplete","stageTimestamp":"2026-01-02T03:04:05.000002Z"}`,
		`{"auditID":"a1","stage":"ResponseComplete"}`,
		// Not ambiguous where one value ends.
		`{"auditID":"a1R","stage":"esponseComplete","stageTimestamp":"2026-01-02T03:04:05.000001Z"}`,
	} {
		if got := one(other); bytes.Equal(got, base) {
			t.Errorf("%s: same ID as %s", other, ev)
		}
	}
	// v1beta1 without stageTimestamp: its timestamp.
	if a, b := one(`{"auditID":"b","stage":"ResponseComplete","timestamp":"2019-01-01T00:00:00Z"}`),
		one(`{"auditID":"b","stage":"ResponseComplete","timestamp":"2019-01-01T00:00:01Z"}`); bytes.Equal(a, b) {
		t.Error("v1beta1: timestamp not in the ID")
	}
	// The items of an Event Hub body are parsed one after the other into the same
	// parser: each record's ID stays its own.
	hub := `{"records":[{"properties":{"log":"{\"auditID\":\"i1\",\"stage\":\"ResponseComplete\",\"stageTimestamp\":\"t1\"}"}},` +
		`{"properties":{"log":"{\"auditID\":\"i2\",\"stage\":\"RequestReceived\",\"stageTimestamp\":\"t2\"}"}}]}`
	res := w.Text([]byte(hub))
	if res.Err != nil || len(res.Records) != 2 {
		t.Fatalf("Event Hub body: %v", res.Err)
	}
	if string(res.Records[0].ID) != "\x02i1\x10ResponseCompletet1" || string(res.Records[1].ID) != "\x02i2\x0fRequestReceivedt2" {
		t.Errorf("Event Hub IDs %q %q", res.Records[0].ID, res.Records[1].ID)
	}
	// A batch item that is not an audit event has none.
	res = w.Text([]byte(`[` + ev + `,{"msg":"x"}]`))
	if len(res.Records) != 2 || res.Records[1].Err == nil || res.Records[1].ID != nil {
		t.Errorf("non-event item: %+v", res.Records)
	}
}
