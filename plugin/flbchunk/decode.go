// Package flbchunk reads and writes Fluent Bit log-event chunks: the concatenated
// msgpack events that Fluent Bit hands a filter and expects back.
//
// An event is [[timestamp, metadata], body] (Fluent Bit v2) or [timestamp, body]
// (legacy, as Fluent Bit's forward format). The timestamp is an EventTime (msgpack ext
// type 0 holding big-endian uint32 seconds and nanoseconds), an integer or a float.
// Group markers (OpenTelemetry-style groups) are events whose timestamp means -1 (group
// start) or -2 (group end): a negative integer, or an EventTime whose seconds are
// 0xFFFFFFFF / 0xFFFFFFFE with 0 nanoseconds.
//
// The Decoder copies nothing: an Event's slices point into the chunk. It follows the
// checks of Fluent Bit's own decoder (flb_log_event_decoder.c): a 2-element root array,
// a 2-element header array, a map for metadata and body.
package flbchunk

import (
	"errors"
	"fmt"
	"io"
)

// Time is an event timestamp.
type Time struct {
	Sec  int64
	Nsec int64
}

// Group marker timestamps (Time.Sec).
const (
	GroupStart = -1
	GroupEnd   = -2
)

// Event is one decoded log event. Its slices point into the chunk.
type Event struct {
	// Raw is the exact encoding of the whole event, for pass-through.
	Raw []byte
	// Offset is where Raw starts in the chunk.
	Offset int
	// Time is the timestamp. For group markers Sec is GroupStart or GroupEnd.
	Time Time
	// IsGroupMarker tells a group start or end record.
	IsGroupMarker bool
	// Legacy is true for a [timestamp, body] event (no metadata).
	Legacy bool
	// Meta is the raw metadata map; nil for a legacy event.
	Meta []byte
	// Body is the raw body map.
	Body []byte
}

// DecodeError describes malformed chunk data.
type DecodeError struct {
	// Offset is where the undecodable event starts in the chunk: every byte before it
	// was decoded into events.
	Offset int
	// At is the byte offset of the problem itself.
	At     int
	Reason string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("flbchunk: malformed event at byte %d (problem at byte %d): %s", e.Offset, e.At, e.Reason)
}

var (
	errTruncated = errors.New("data ends inside a value")
	errBadCode   = errors.New("invalid msgpack type code 0xc1")
	errNotMap    = errors.New("not a map")
	errTimeType  = errors.New("timestamp is not an EventTime, integer or float")
	errTimeRange = errors.New("float timestamp out of range")
)

// Decoder reads the events of a chunk one by one. The zero value decodes an empty
// chunk; Reset starts over on new data, so one Decoder serves many chunks.
type Decoder struct {
	data []byte
	off  int
	err  error
}

// NewDecoder returns a Decoder over chunk.
func NewDecoder(chunk []byte) *Decoder {
	return &Decoder{data: chunk}
}

// Reset makes the Decoder read chunk from its start.
func (d *Decoder) Reset(chunk []byte) {
	d.data, d.off, d.err = chunk, 0, nil
}

// Offset is the number of bytes decoded so far: the end of the last event returned,
// or where the malformed data starts after an error.
func (d *Decoder) Offset() int { return d.off }

// Next decodes the next event into ev. It returns io.EOF at the end of the chunk and a
// *DecodeError on malformed data; after an error it keeps returning that error and
// Offset stays at the start of the undecodable event.
func (d *Decoder) Next(ev *Event) error {
	if d.err != nil {
		return d.err
	}
	if d.off >= len(d.data) {
		return io.EOF
	}
	if err := d.event(ev); err != nil {
		d.err = err
		return err
	}
	return nil
}

func (d *Decoder) fail(at int, format string, args ...any) error {
	return &DecodeError{Offset: d.off, At: at, Reason: fmt.Sprintf(format, args...)}
}

func (d *Decoder) event(ev *Event) error {
	b := d.data
	start := d.off
	t, off, n, _, err := header(b, start)
	if err != nil {
		return d.fail(start, "event: %v", err)
	}
	if t != TypeArray || n != 2 {
		return d.fail(start, "event is a %s of %d, not an array of 2", t, n)
	}
	ev.Offset = start
	ev.Meta = nil
	tsOff := 0
	ev.Legacy = false

	t, hoff, n, _, err := header(b, off)
	if err != nil {
		return d.fail(off, "event header: %v", err)
	}
	if t == TypeArray {
		if n != 2 {
			return d.fail(off, "event header is an array of %d, not 2", n)
		}
		tsOff = hoff
		ev.Time, off, err = readTime(b, hoff)
		if err != nil {
			return d.fail(hoff, "timestamp: %v", err)
		}
		end, err := d.mapAt(off, "metadata")
		if err != nil {
			return err
		}
		ev.Meta = b[off:end:end]
		off = end
	} else {
		ev.Legacy = true
		tsOff = off
		ev.Time, off, err = readTime(b, off)
		if err != nil {
			return d.fail(tsOff, "timestamp: %v", err)
		}
	}
	end, err := d.mapAt(off, "body")
	if err != nil {
		return err
	}
	ev.Body = b[off:end:end]
	ev.Raw = b[start:end:end]
	ev.IsGroupMarker = isMarker(&ev.Time, isExtCode(b[tsOff]))
	d.off = end
	return nil
}

func (d *Decoder) mapAt(off int, what string) (int, error) {
	t, _, _, _, err := header(d.data, off)
	if err != nil {
		return off, d.fail(off, "%s: %v", what, err)
	}
	if t != TypeMap {
		return off, d.fail(off, "%s is a %s, not a map", what, t)
	}
	end, err := Skip(d.data, off)
	if err != nil {
		return off, d.fail(end, "%s: %v", what, err)
	}
	return end, nil
}

// isMarker reports whether a timestamp is a group marker: a negative integer -1/-2,
// or an EventTime 0xFFFFFFFF/0xFFFFFFFE with zero nanoseconds (then it rewrites
// t.Sec to GroupStart/GroupEnd). isExt tells whether the timestamp was an EventTime.
func isMarker(t *Time, isExt bool) bool {
	if t.Nsec != 0 {
		return false
	}
	switch t.Sec {
	case GroupStart, GroupEnd:
		return !isExt
	case 0xFFFFFFFF:
		if isExt {
			t.Sec = GroupStart
			return true
		}
	case 0xFFFFFFFE:
		if isExt {
			t.Sec = GroupEnd
			return true
		}
	}
	return false
}

func isExtCode(c byte) bool {
	return (c >= 0xc7 && c <= 0xc9) || (c >= 0xd4 && c <= 0xd8)
}
