package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/kubetrail/kubetrail/cmd/kubetrail/internal/auditreport"
	"github.com/kubetrail/kubetrail/enrich"
)

// sink receives the records that pass the filters and writes the output at the end.
type sink interface {
	// Add takes one record; it must copy what it keeps (the record's bytes are views).
	Add(r *enrich.Record) error
	// Finish writes the output.
	Finish(w io.Writer) error
	// Close releases what the sink holds (a spool file), whether Finish ran or not.
	Close()
}

// newSink returns the sink of o.output; out is where a streaming output (json) writes.
func newSink(o *auditOptions, sources []string, out io.Writer) (sink, error) {
	switch o.output {
	case "line", "wide":
		return newSpoolSink(o.output == "wide")
	case "json":
		return &jsonSink{w: bufio.NewWriterSize(out, 1<<18)}, nil
	case "top":
		t, err := auditreport.NewTop(o.by, o.limit)
		if err != nil {
			return nil, fmt.Errorf("--by: %w", err)
		}
		return aggregateSink{t}, nil
	case "stats":
		return aggregateSink{auditreport.NewStats()}, nil
	case "html":
		return aggregateSink{auditreport.NewReport(auditreport.ReportOptions{Sources: sources})}, nil
	}
	return nil, fmt.Errorf("unknown output %q", o.output)
}

// aggregateSink feeds an auditreport aggregate (top, stats, html); it writes its own
// header.
type aggregateSink struct{ a auditreport.Aggregate }

func (s aggregateSink) Add(r *enrich.Record) error { s.a.Add(&r.Summary); return nil }
func (s aggregateSink) Finish(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	if err := s.a.Write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}
func (aggregateSink) Close() {}

// jsonSink writes each record's fields as one JSON line, as they come: no header,
// so that the output stays JSON lines.
type jsonSink struct {
	w   *bufio.Writer
	buf []byte
}

func (s *jsonSink) Add(r *enrich.Record) error {
	var err error
	s.buf, err = appendFieldsJSON(s.buf[:0], r.Fields, r.Count)
	if err != nil {
		return fmt.Errorf("converting record %s to JSON: %w", r.Summary.AuditID, err)
	}
	s.buf = append(s.buf, '\n')
	if _, err := s.w.Write(s.buf); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

func (s *jsonSink) Finish(io.Writer) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}
func (*jsonSink) Close() {}

// spoolSink writes line/wide lines to a temporary file as they come, so that memory
// stays bounded whatever the number of records, and at the end writes the header
// (record count and time range, known only then) followed by the lines.
type spoolSink struct {
	wide bool
	f    *os.File
	w    *bufio.Writer
	span auditreport.Span
	buf  []byte
}

func newSpoolSink(wide bool) (*spoolSink, error) {
	f, err := os.CreateTemp("", "kubetrail-audit-*.txt")
	if err != nil {
		return nil, fmt.Errorf("creating the spool file of the output (TMPDIR): %w", err)
	}
	return &spoolSink{wide: wide, f: f, w: bufio.NewWriterSize(f, 1<<18)}, nil
}

func (s *spoolSink) Add(r *enrich.Record) error {
	s.span.Add(&r.Summary)
	s.buf = appendTextLine(s.buf[:0], &r.Summary, s.wide)
	if _, err := s.w.Write(s.buf); err != nil {
		return fmt.Errorf("writing the spool file %s: %w", s.f.Name(), err)
	}
	return nil
}

func (s *spoolSink) Finish(w io.Writer) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("writing the spool file %s: %w", s.f.Name(), err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("reading the spool file: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	if err := s.span.WriteText(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if _, err := io.Copy(w, s.f); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

func (s *spoolSink) Close() {
	s.f.Close()
	os.Remove(s.f.Name())
}

// appendTextLine formats one record as kubectl-dev_tool audit does, with fixed
// widths instead of a tabwriter (which would hold every line in memory):
//
//	2025-11-20T10:15:30.123Z [   GET][     8.333ms] [200] /api/v1/... [user]
//
// wide adds the auditID after the time, the source IP and the user agent at the end.
// An impersonated request shows "[user as impersonated-user]".
func appendTextLine(b []byte, s *enrich.Summary, wide bool) []byte {
	if s.Received.IsZero() {
		b = append(b, "-                       "...)
	} else {
		b = s.Received.Go().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	}
	if wide {
		b = append(b, " ("...)
		b = append(b, s.AuditID...)
		b = append(b, ')')
	}
	b = append(b, " ["...)
	b = appendPadLeft(b, s.Verb, 6, true)
	b = append(b, "]["...)
	var dur [24]byte
	d := dur[:0]
	if s.HasDuration {
		d = append(d, time.Duration(s.DurationMs*float64(time.Millisecond)).String()...)
	} else {
		d = append(d, '-')
	}
	b = appendPadLeft(b, d, 12, false)
	b = append(b, "] ["...)
	if s.Code == 0 {
		b = append(b, "  -"...)
	} else {
		var c [20]byte
		b = appendPadLeft(b, strconv.AppendInt(c[:0], int64(s.Code), 10), 3, false)
	}
	b = append(b, "] "...)
	b = appendClean(b, s.RequestURI)
	b = append(b, " ["...)
	b = appendClean(b, s.User)
	if len(s.ImpersonatedUser) > 0 {
		b = append(b, " as "...)
		b = appendClean(b, s.ImpersonatedUser)
	}
	b = append(b, ']')
	if wide {
		b = append(b, " ["...)
		b = appendClean(b, s.ClientIP)
		b = append(b, "] ["...)
		b = appendClean(b, s.UserAgent)
		b = append(b, ']')
	}
	return append(b, '\n')
}

// appendPadLeft appends s right-aligned in width columns, upper-cased (ASCII) when
// upper is set.
func appendPadLeft(b, s []byte, width int, upper bool) []byte {
	for i := len(s); i < width; i++ {
		b = append(b, ' ')
	}
	if !upper {
		return append(b, s...)
	}
	for _, c := range s {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// appendClean appends text from the log with control characters (a newline in a user
// agent would break the one-line-per-request output) shown as '?'.
func appendClean(b, s []byte) []byte {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			c = '?'
		}
		b = append(b, c)
	}
	return b
}
