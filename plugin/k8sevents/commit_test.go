package k8sevents

import (
	"context"
	"testing"

	"github.com/kubetrail/kubetrail/state"
)

// TestCommitFailureKeepsDedup: when the database fails a commit after Fluent Bit took
// the records, those Events stay known in memory, so that a re-list in the same run
// does not emit them again; the failure is counted and logged. (No API server: the
// collector keeps retrying an unreachable one in the background.)
func TestCommitFailureKeepsDedup(t *testing.T) {
	in, _, log := deliveryInput(t, Synchronous)

	k := state.Key{UID: "u1", ResourceVersion: "7"}
	if fresh, err := in.reserve(k); err != nil || !fresh {
		t.Fatalf("reserve = %v, %v; want a new Event", fresh, err)
	}
	if err := in.q.put(context.Background(), item{key: k, rec: []byte{0xc0}, rv: "7"}); err != nil {
		t.Fatal(err)
	}
	b := in.Collect()
	if b == nil || b.Records() != 1 {
		t.Fatalf("Collect = %+v", b)
	}
	in.store.Close() // the database fails from now on
	in.Commit(b)

	if st := in.Stats(); st.DBErrors != 1 || st.Emitted != 1 {
		t.Errorf("stats %s: want the record counted as emitted and one db error", st)
	}
	if !log.contains("kept in memory") {
		t.Error("the commit failure was not logged")
	}
	// Known in memory: answered without the (failing) database.
	if fresh, err := in.reserve(k); fresh || err != nil {
		t.Errorf("reserve after the failed commit = %v, %v: the Event is not known in memory", fresh, err)
	}
	if in.committedRV() != "" {
		t.Errorf("checkpoint advanced to %q although nothing was stored", in.committedRV())
	}
}
