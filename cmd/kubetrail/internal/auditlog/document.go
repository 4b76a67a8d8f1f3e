package auditlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// splitter cuts a whole-document file into JSON values: each top-level value, and each
// element of a top-level array (a JSON array of events is split so that a file of any
// size is read in bounded memory). A top-level object, an EventList among them, is one
// value: the enricher splits its items. It tracks line numbers so that a value that
// cannot be read is reported where it starts.
type splitter struct {
	br   *bufio.Reader
	line int // line of the last byte read (1-based)
	max  int
	// inArray: inside a top-level array, whose elements are the values.
	inArray bool
	buf     []byte
}

func newSplitter(r io.Reader, firstLine, max int) *splitter {
	return &splitter{br: bufio.NewReaderSize(r, 1<<16), line: firstLine, max: max}
}

func (d *splitter) readByte() (byte, error) {
	c, err := d.br.ReadByte()
	if err == nil && c == '\n' {
		d.line++
	}
	return c, err
}

// next returns the next value and the line it starts on, io.EOF at the end of the
// file, or a read error. Values that cannot be read (too long, not closed at the end
// of the file) are reported on r and skipped.
func (d *splitter) next(r *Reader, file string) ([]byte, int, error) {
	for {
		c, err := d.readByte()
		if err != nil {
			if errors.Is(err, io.EOF) && d.inArray {
				r.issue(file, d.line, "JSON array not closed at the end of the file")
				d.inArray = false
			}
			return nil, 0, err
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '[':
			if !d.inArray {
				d.inArray = true
				continue
			}
		case ',':
			if d.inArray {
				continue
			}
		case ']':
			if d.inArray {
				d.inArray = false
				continue
			}
		}
		start := d.line
		v, reason, err := d.value(c)
		if reason != "" {
			r.issue(file, start, reason)
			if err != nil {
				return nil, 0, err
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, err
		}
		return v, start, nil
	}
}

// value reads one value that starts with c. An object or array runs to its matching
// close; anything else (a scalar, text that is not JSON) runs to the next ',' or ']'
// inside an array, or to the end of the line at top level, and is returned for the
// caller to judge. reason is set when the value is skipped.
func (d *splitter) value(c byte) (v []byte, reason string, err error) {
	d.buf = append(d.buf[:0], c)
	size, tooLong := 1, false
	add := func(c byte) {
		size++
		if tooLong {
			return
		}
		if size > d.max {
			tooLong, d.buf = true, d.buf[:0]
			return
		}
		d.buf = append(d.buf, c)
	}
	tooLongReason := func() string {
		return fmt.Sprintf("JSON value of %d bytes is longer than the limit of %d bytes, skipped", size, d.max)
	}
	if c != '{' && c != '[' {
		for {
			c, err := d.br.ReadByte()
			if err != nil {
				if tooLong {
					return nil, tooLongReason(), err
				}
				return d.buf, "", err
			}
			if c == '\n' || (d.inArray && (c == ',' || c == ']')) {
				d.br.UnreadByte()
				if tooLong {
					return nil, tooLongReason(), nil
				}
				return trimRight(d.buf), "", nil
			}
			add(c)
		}
	}
	n := nesting{depth: 1}
	for n.depth > 0 {
		c, err := d.readByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Sprintf("JSON value of %d bytes not closed at the end of the file", size), err
			}
			return nil, fmt.Sprintf("JSON value of %d bytes cut short by a read error", size), err
		}
		add(c)
		n.step(c)
	}
	if tooLong {
		return nil, tooLongReason(), nil
	}
	return d.buf, "", nil
}

func trimRight(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
