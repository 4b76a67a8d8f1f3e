// Package enrich turns kube-apiserver audit events (audit.k8s.io/v1 and v1beta1) into
// structured records with derived fields: how long the request took, who made it (user,
// service account, node, impersonation), what it touched, why it was allowed or denied,
// where it came from and how it ended.
//
// It is pure Go and knows nothing of cgo: the Fluent Bit filter (package k8saudit)
// and the offline tools call it. Input is the audit event as JSON text (a log line or a
// webhook body) or as an already decoded msgpack map; output is msgpack key/value pairs
// that the caller places into a Fluent Bit record.
//
// A Worker keeps the scratch memory of one goroutine (JSON parser, arena, buffers), so
// that the per-record path allocates nothing once warm. Workers are not safe for
// concurrent use; take one per goroutine (Enricher.Get / Enricher.Put pool them).
package enrich

import "time"

// TimeSource says which time becomes the Fluent Bit record's timestamp.
type TimeSource int

const (
	// TimeRequestReceived uses requestReceivedTimestamp (v1beta1: timestamp).
	TimeRequestReceived TimeSource = iota
	// TimeStage uses stageTimestamp, the time of the stage the record describes.
	TimeStage
	// TimeKeep keeps the timestamp the record arrived with.
	TimeKeep
)

// Options are the enrichment settings; package conf builds them from Fluent Bit
// properties and validates them.
type Options struct {
	// DerivedKey nests the derived fields under this key; "" puts them at top level.
	DerivedKey string
	// TimeSource picks the record timestamp.
	TimeSource TimeSource
	// Redact enables the built-in redactions: Secret data/stringData (and the
	// last-applied-configuration annotation of Secrets) in request and response
	// objects, TokenRequest and TokenReview tokens.
	Redact bool
	// RedactExecCommand also hides the command= query parameters of exec/attach URIs.
	RedactExecCommand bool
	// RedactPaths are extra dotted paths to redact, e.g. "requestObject.spec.password".
	// A "*" element matches every key of an object or every item of an array.
	RedactPaths []string
	// MaxObjectSize is the largest requestObject/responseObject kept, in bytes of JSON;
	// larger ones are replaced by a marker and the record is flagged truncated.
	// 0 means no limit.
	MaxObjectSize int
	// DropManagedFields removes metadata.managedFields from request/response objects.
	DropManagedFields bool
	// Keep, when not empty, keeps only the events that match one of its rules.
	Keep RuleSet
	// Drop removes the events that match one of its rules (after Keep).
	Drop RuleSet
	// Summary fills Record.Summary. Off for the Fluent Bit filter, which never reads it.
	Summary bool
	// Metrics adds the fields Fluent Bit's log_to_metrics counts: "metrics" on the
	// record that counts its request once (its last stage), "timed" when its
	// duration is the server's latency, "counted" when it is long-running; and
	// "user_top" there: the user's name for the TopUsers users making the most
	// requests, "other" for the rest (see topUsers).
	Metrics bool
	// TopUsers bounds user_top's names (0: no user_top).
	TopUsers int
	// SummaryOnly skips encoding the records, and the modifications that only the
	// encoded record would show (redaction but for the request URI's, size limits):
	// each Record has its Time and Summary, an empty Fields and Count 0. For tools
	// that read Summary alone (kubetrail audit's top, stats, line and html outputs);
	// encoding is about a quarter of the time of a Metadata-level event.
	SummaryOnly bool
}

// Time is a record timestamp with nanosecond precision.
type Time struct {
	Sec  int64
	Nsec int64
}

// IsZero reports whether no time is known.
func (t Time) IsZero() bool { return t.Sec == 0 && t.Nsec == 0 }

// Go converts to time.Time (UTC).
func (t Time) Go() time.Time { return time.Unix(t.Sec, t.Nsec).UTC() }

// Record is one output record: the audit event's own fields plus the derived ones.
type Record struct {
	// Time is the timestamp chosen by Options.TimeSource; zero when the event carries
	// no usable time or TimeSource is TimeKeep: the caller then keeps the incoming one.
	Time Time
	// Fields holds Count msgpack-encoded key/value pairs (keys are strings), ready to be
	// written after a map header. It is only valid until the Worker's next call.
	Fields []byte
	// Count is the number of key/value pairs in Fields.
	Count int
	// ID identifies the audit event and stage the record is: auditID, stage and
	// stageTimestamp (v1beta1 without one: timestamp), as written, in one unambiguous
	// encoding. Two records have equal IDs exactly when those three values are equal;
	// the k8s_audit filter's dedup hashes it. Empty on a batch item that is not an
	// audit event (Err set). Valid until the Worker's next call.
	ID []byte
	// Summary gives the record's main values without decoding Fields; set when
	// Options.Summary or Options.SummaryOnly asks for it.
	Summary Summary
	// Err is set on a batch item that is not an audit event: the record holds the item
	// as it was, with a parse_error field, and Summary is empty.
	Err error
	// keys lists the top-level keys written, for HasKey; keySet indexes them when
	// there are many.
	keys   []string
	keySet map[string]struct{}
	// errAt is, when Err is set, where the parse_error pair starts in Fields.
	errAt int
}

// ItemFields returns the fields of a batch item that is not an audit event (Err set)
// without its parse_error pair: the item as it was. For any other record it returns
// Fields and Count.
func (r *Record) ItemFields() ([]byte, int) {
	if r.Err == nil {
		return r.Fields, r.Count
	}
	return r.Fields[:r.errAt], r.Count - 1
}

// HasKey reports whether the record already has a top-level field with this name, so
// that a caller adding fields of its own (the input record's other keys) avoids
// duplicate keys. A caller asks once per key of the input record, so for a record of
// many keys a set is built at the first call (a scan each time would be quadratic).
func (r *Record) HasKey(k string) bool {
	if len(r.keys) > hasKeyScan {
		if r.keySet == nil {
			r.keySet = make(map[string]struct{}, len(r.keys))
			for _, have := range r.keys {
				r.keySet[have] = struct{}{}
			}
		}
		_, ok := r.keySet[k]
		return ok
	}
	for _, have := range r.keys {
		if have == k {
			return true
		}
	}
	return false
}

// hasKeyScan is the most keys HasKey scans; above, it builds a set.
const hasKeyScan = 32

// Result is what one input produced.
type Result struct {
	// Records are the output records, in input order (a webhook batch gives several).
	Records []Record
	// Dropped counts the events removed by the Keep/Drop rules.
	Dropped int
	// Err is set when the input as a whole is not an audit event (or a batch of them):
	// the caller passes the original record through unchanged. Records is then empty.
	// Inside a batch that holds at least one audit event, an item that is not one
	// becomes a record of its own with a parse_error field instead, so that nothing
	// disappears; a batch without any (empty, a PodList, klog lines only) is an Err.
	Err error
	// Batch is set when the records came from a list of events (an EventList or JSON
	// array, an Event Hub body, a CloudWatch Logs payload) rather than a single one.
	Batch bool
	// EnvelopeKeys are, for an input whose top level is a batch or an envelope, the
	// top-level keys that are the envelope's own: EventList kind, apiVersion,
	// metadata, items; Event Hub records; CloudWatch Logs messageType,
	// subscriptionFilters, logEvents; AKS properties (which holds the event's text). A
	// caller that copies the input record's other fields next to every record
	// (reserve_data) leaves these out, or each record would carry the whole batch.
	EnvelopeKeys []string
}

// Facts are the few properties of an event that Keep/Drop rules look at; the Worker
// fills them from the parsed event before it spends anything on encoding.
type Facts struct {
	Stage string
	Verb  string
	// User is the authenticated user name (user.username).
	User   string
	Groups []string
	// GroupResource is resource[.apiGroup][/subresource], e.g. "pods", "pods/exec",
	// "leases.coordination.k8s.io"; "" for a non-resource request.
	GroupResource string
	Namespace     string
	Name          string
	// NonResourceURL is the request path of a non-resource request (/healthz, /metrics);
	// "" for a resource request.
	NonResourceURL string
	// UserType is one of serviceaccount, node, system, anonymous, user, unauthenticated.
	UserType string
	// Code is responseStatus.code, 0 when absent.
	Code int
}
