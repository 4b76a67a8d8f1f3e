package k8sevents

import (
	"errors"
	"fmt"
	"io"

	"github.com/valyala/fastjson"
)

// listReader reads a LIST response as it arrives, item by item, so that memory does not
// hold a page: the list's metadata, then each element of "items" as its own raw JSON,
// which the caller parses alone (a tree of one Event, a parser reused). Parsing a whole
// 500-Event page with fastjson kept the body twice (client-go's read and fastjson's
// copy) and a tree of several MB per page in flight (three at a time with the page
// fetched ahead); this keeps a 64 KB window and the largest item.
//
// It checks only what it needs to find the values (strings, nesting, separators);
// each item is then parsed in full by fastjson, which rejects malformed JSON.
type listReader struct {
	s    scanner
	key  []byte
	val  []byte // the metadata, or a value skipped
	item []byte
	// Items before the metadata (the API server writes metadata first, ListMeta
	// preceding Items in every list type, so this stays empty): kept until it is read,
	// because the list's resourceVersion must be stored before any of them is handled.
	pending []byte
	ends    []int
	meta    fastjson.Parser
}

// listMeta is what the caller needs from a page's metadata.
type listMeta struct {
	resourceVersion string
	cont            string // the continue token, "" on the last page
}

const listWindow = 64 << 10

// read reads one list object from r. meta is called once, with the list's metadata,
// before the first item is given to item (at the end if the list has no metadata:
// then with empty values); item's argument is valid until it returns.
func (lr *listReader) read(r io.Reader, meta func(listMeta) error, item func(raw []byte) error) error {
	if lr.s.buf == nil {
		lr.s.buf = make([]byte, listWindow)
	}
	lr.s.reset(r)
	lr.pending, lr.ends = lr.pending[:0], lr.ends[:0]
	defer func() {
		lr.s.reset(nil)
		if cap(lr.pending) > 4*listWindow {
			lr.pending, lr.ends = nil, nil
		}
		if cap(lr.item) > 4*listWindow {
			lr.item = nil // one huge Event: do not keep its buffer
		}
	}()
	metaDone := false
	sendMeta := func(m listMeta) error {
		metaDone = true
		if err := meta(m); err != nil {
			return err
		}
		start := 0
		for _, end := range lr.ends {
			if err := item(lr.pending[start:end]); err != nil {
				return err
			}
			start = end
		}
		lr.pending, lr.ends = lr.pending[:0], lr.ends[:0]
		return nil
	}
	if err := lr.s.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		c, err := lr.s.next()
		if err != nil {
			return err
		}
		if c == '}' {
			break
		}
		if !first {
			if c != ',' {
				return lr.s.syntax(c, "',' or '}' in the list")
			}
			if c, err = lr.s.next(); err != nil {
				return err
			}
		}
		if c != '"' {
			return lr.s.syntax(c, "a key in the list")
		}
		if lr.key, err = lr.s.stringRest(append(lr.key[:0], c)); err != nil {
			return err
		}
		if err := lr.s.expect(':'); err != nil {
			return err
		}
		switch string(lr.key) {
		case `"metadata"`:
			if lr.val, err = lr.s.value(lr.val[:0]); err != nil {
				return err
			}
			v, err := lr.meta.ParseBytes(lr.val)
			if err != nil {
				return fmt.Errorf("list metadata: %w", err)
			}
			if v.Type() != fastjson.TypeObject {
				return fmt.Errorf("list metadata is %s, not an object", v.Type())
			}
			if err := sendMeta(listMeta{
				resourceVersion: string(v.GetStringBytes("resourceVersion")),
				cont:            string(v.GetStringBytes("continue")),
			}); err != nil {
				return err
			}
		case `"items"`:
			if err := lr.items(func(raw []byte) error {
				if metaDone {
					return item(raw)
				}
				lr.pending = append(lr.pending, raw...)
				lr.ends = append(lr.ends, len(lr.pending))
				return nil
			}); err != nil {
				return err
			}
		default:
			if lr.val, err = lr.s.value(lr.val[:0]); err != nil {
				return err
			}
		}
	}
	if !metaDone {
		return sendMeta(listMeta{})
	}
	return nil
}

// items reads the value of "items": an array (or null), each element to f.
func (lr *listReader) items(f func([]byte) error) error {
	c, err := lr.s.peek()
	if err != nil {
		return err
	}
	if c != '[' {
		if lr.val, err = lr.s.value(lr.val[:0]); err != nil {
			return err
		}
		if string(lr.val) == "null" {
			return nil
		}
		return fmt.Errorf("list: items is %.20q, not an array", lr.val)
	}
	lr.s.pos++
	for first := true; ; first = false {
		c, err := lr.s.peek()
		if err != nil {
			return err
		}
		if c == ']' {
			lr.s.pos++
			return nil
		}
		if !first {
			if c != ',' {
				return lr.s.syntax(c, "',' or ']' in items")
			}
			lr.s.pos++
		}
		if lr.item, err = lr.s.value(lr.item[:0]); err != nil {
			return err
		}
		if err := f(lr.item); err != nil {
			return err
		}
	}
}

// scanner is a window over a reader, for listReader.
type scanner struct {
	r      io.Reader
	buf    []byte
	pos, n int
	err    error // the reader's error once it returned one (io.EOF at the end)
	off    int64 // bytes of the stream before buf
}

func (s *scanner) reset(r io.Reader) { s.r, s.pos, s.n, s.err, s.off = r, 0, 0, nil, 0 }

// fill reads more into the window (whatever was before pos is consumed) and reports
// whether there is any.
func (s *scanner) fill() bool {
	s.off += int64(s.n)
	s.pos, s.n = 0, 0
	for s.err == nil && s.n == 0 {
		s.n, s.err = s.r.Read(s.buf)
	}
	return s.n > 0
}

// readErr is why the stream ended inside a value.
func (s *scanner) readErr() error {
	if s.err == nil || errors.Is(s.err, io.EOF) {
		return fmt.Errorf("list: %w after %d bytes", io.ErrUnexpectedEOF, s.off)
	}
	return fmt.Errorf("list: reading the response: %w", s.err)
}

func (s *scanner) syntax(c byte, want string) error {
	return fmt.Errorf("list: %q at byte %d, want %s", c, s.off+int64(s.pos)-1, want)
}

// peek returns the next byte that is not white space, without consuming it.
func (s *scanner) peek() (byte, error) {
	for {
		for s.pos < s.n {
			switch c := s.buf[s.pos]; c {
			case ' ', '\t', '\n', '\r':
				s.pos++
			default:
				return c, nil
			}
		}
		if !s.fill() {
			return 0, s.readErr()
		}
	}
}

// next consumes and returns the next byte that is not white space.
func (s *scanner) next() (byte, error) {
	c, err := s.peek()
	if err == nil {
		s.pos++
	}
	return c, err
}

func (s *scanner) expect(want byte) error {
	c, err := s.next()
	if err != nil {
		return err
	}
	if c != want {
		return s.syntax(c, fmt.Sprintf("%q", want))
	}
	return nil
}

// stringRest appends the rest of a string whose opening quote was consumed, closing
// quote included, to dst.
func (s *scanner) stringRest(dst []byte) ([]byte, error) {
	esc := false
	for {
		start := s.pos
		for s.pos < s.n {
			c := s.buf[s.pos]
			s.pos++
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				return append(dst, s.buf[start:s.pos]...), nil
			}
		}
		dst = append(dst, s.buf[start:s.pos]...)
		if !s.fill() {
			return dst, s.readErr()
		}
	}
}

// value appends the next JSON value's text to dst: a string, an object or an array
// up to its closing bracket (brackets inside strings ignored), or a literal or number
// up to the next delimiter.
func (s *scanner) value(dst []byte) ([]byte, error) {
	c, err := s.next()
	if err != nil {
		return dst, err
	}
	dst = append(dst, c)
	switch c {
	case '"':
		return s.stringRest(dst)
	case '{', '[':
	case '}', ']', ',', ':':
		return dst, s.syntax(c, "a value")
	default:
		for {
			start := s.pos
			for s.pos < s.n {
				switch s.buf[s.pos] {
				case ',', '}', ']', ' ', '\t', '\n', '\r':
					return append(dst, s.buf[start:s.pos]...), nil
				}
				s.pos++
			}
			dst = append(dst, s.buf[start:s.pos]...)
			if !s.fill() {
				return dst, s.readErr()
			}
		}
	}
	depth, inString, esc := 1, false, false
	for {
		start := s.pos
		for s.pos < s.n {
			c := s.buf[s.pos]
			s.pos++
			if inString {
				switch {
				case esc:
					esc = false
				case c == '\\':
					esc = true
				case c == '"':
					inString = false
				}
				continue
			}
			switch c {
			case '"':
				inString = true
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return append(dst, s.buf[start:s.pos]...), nil
				}
			}
		}
		dst = append(dst, s.buf[start:s.pos]...)
		if !s.fill() {
			return dst, s.readErr()
		}
	}
}
