package conf

import "github.com/kubetrail/kubetrail/enrich"

// Audit is the configuration of one k8s_audit filter instance.
type Audit struct {
	// Key is the record field holding the audit event as JSON text (in_tail without a
	// parser writes "log"). A record without it, or where it is a map, is taken as the
	// already-decoded audit event.
	Key string
	// ReserveData keeps the input record's other fields next to the audit fields (as
	// the parser filter's reserve_data does).
	ReserveData bool
	// PreserveKey keeps the original Key field (the raw JSON text) as well.
	PreserveKey bool
	// AddParseError adds a parse_error field, saying why, to records that pass through
	// because they are not audit events.
	AddParseError bool
	// Enrich holds the enrichment settings.
	Enrich enrich.Options
	// Dedup drops an audit event's record when a record of the same (auditID, stage,
	// stageTimestamp) was already emitted: in_tail reading a rotated file again, the
	// apiserver re-sending a webhook batch. Records that are not audit events never.
	Dedup bool
	// DedupFile keeps the dedup state across restarts ("": memory only).
	DedupFile string
	// DedupMaxEntries is how many events dedup remembers.
	DedupMaxEntries int
}
