// Package auditreport aggregates enriched audit records into the answers of
// `kubetrail audit`: top lists, duration statistics, and a self-contained HTML report.
// Every aggregate reads enrich.Summary, the same derived values the k8s_audit filter
// writes into its records, so both mean the same thing.
package auditreport

import (
	"fmt"
	"io"
	"time"

	"github.com/kubetrail/kubetrail/enrich"
)

// Aggregate is one output of `kubetrail audit` that needs every record before it can
// write: Add is called once per record that passed the filters, in file order, then
// Write once. Add must copy what it keeps of the Summary (its bytes are views).
type Aggregate interface {
	Add(s *enrich.Summary)
	Write(w io.Writer) error
}

// Span counts records and the time range they cover (requestReceivedTimestamp), the
// line every text output starts with, as kubectl-dev_tool audit prints it.
type Span struct {
	Records     int
	First, Last time.Time
}

// Add counts one record.
func (s *Span) Add(sum *enrich.Summary) {
	s.Records++
	if sum.Received.IsZero() {
		return
	}
	t := sum.Received.Go()
	if s.First.IsZero() || t.Before(s.First) {
		s.First = t
	}
	if t.After(s.Last) {
		s.Last = t
	}
}

// WriteText writes the header line: "# 12345 records from T1 to T2 (59m58s)".
func (s Span) WriteText(w io.Writer) error {
	var err error
	if s.First.IsZero() {
		_, err = fmt.Fprintf(w, "# %d records\n", s.Records)
	} else {
		_, err = fmt.Fprintf(w, "# %d records from %s to %s (%s)\n", s.Records,
			s.First.Format(time.RFC3339Nano), s.Last.Format(time.RFC3339Nano), s.Last.Sub(s.First))
	}
	if err != nil {
		return fmt.Errorf("writing header: %w", err)
	}
	return nil
}
