package auditlog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// DefaultMaxValue is the largest line or JSON value read: kube-apiserver writes one
// event per line, and an event over 256 MiB is not an event but a damaged file.
const DefaultMaxValue = 256 << 20

// DefaultMaxIssues is how many unreadable lines are kept with their details.
const DefaultMaxIssues = 20

// Options tune a Reader; the zero value gives the defaults.
type Options struct {
	// MaxValue is the largest line (or JSON value of a whole-document file) read, in
	// bytes; a longer one is skipped to its end and reported. 0: DefaultMaxValue.
	MaxValue int
	// MaxIssues is how many Issues are kept with details; all are counted.
	// 0: DefaultMaxIssues; negative: none kept.
	MaxIssues int
	// Stdin is read for the path "-"; nil: os.Stdin.
	Stdin io.Reader
	// BufferSize is the read buffer of a file; 0: 1 MiB. Lines longer than it are
	// assembled in a separate buffer, so it bounds nothing but speed.
	BufferSize int
}

// Issue is one line that could not be read, or a file that could not be read to its
// end.
type Issue struct {
	File string
	// Line is the 1-based line number where the unreadable text starts; 0 for an
	// issue of the whole file.
	Line   int
	Reason string
}

func (i Issue) String() string {
	if i.Line == 0 {
		return fmt.Sprintf("%s: %s", i.File, i.Reason)
	}
	return fmt.Sprintf("%s:%d: %s", i.File, i.Line, i.Reason)
}

// Reader streams the audit JSON texts of a list of inputs: one per line, or one per
// JSON value in a whole-document file. Use it as
//
//	for r.Next() { text := r.Text(); ... r.Skip("why") when text is not usable }
//
// then read Issues, IssueCount and FileErrors. A Reader is not safe for concurrent
// use, except BytesRead and TotalBytes, which a progress display may call from
// another goroutine.
type Reader struct {
	inputs []Input
	opts   Options
	next   int
	src    *source

	text []byte
	file string
	line int

	issueCount int64
	issues     []Issue
	fileErrors []Issue

	bytesRead atomic.Int64
	total     int64
	long      []byte
}

// NewReader reads inputs in order (see Expand).
func NewReader(inputs []Input, opts Options) *Reader {
	if opts.MaxValue <= 0 {
		opts.MaxValue = DefaultMaxValue
	}
	if opts.MaxIssues == 0 {
		opts.MaxIssues = DefaultMaxIssues
	}
	if opts.Stdin == nil {
		opts.Stdin = os.Stdin
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = 1 << 20
	}
	r := &Reader{inputs: inputs, opts: opts}
	for _, in := range inputs {
		if in.Size < 0 {
			r.total = -1
			break
		}
		r.total += in.Size
	}
	return r
}

// Next advances to the next text; it returns false when every input has been read.
func (r *Reader) Next() bool {
	for {
		if r.src == nil {
			if r.next >= len(r.inputs) {
				r.text = nil
				return false
			}
			in := r.inputs[r.next]
			r.next++
			src, err := r.open(in)
			if err != nil {
				r.fileError(in.Path, err)
				continue
			}
			r.src = src
		}
		text, line, err := r.src.nextValue(r)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.fileError(r.src.name, err)
			}
			r.src.close()
			r.src = nil
			continue
		}
		r.text, r.file, r.line = text, r.src.name, line
		return true
	}
}

// Text is the current audit JSON text (without its line end); valid until Next.
func (r *Reader) Text() []byte { return r.text }

// Pos is the file and 1-based line number where the current text starts.
func (r *Reader) Pos() (file string, line int) { return r.file, r.line }

// Skip counts the current text as unreadable, for the reason given.
func (r *Reader) Skip(reason string) { r.issue(r.file, r.line, reason) }

// IssueCount is the number of unreadable lines (and JSON values), all of them.
func (r *Reader) IssueCount() int64 { return r.issueCount }

// Issues are the first Options.MaxIssues unreadable lines.
func (r *Reader) Issues() []Issue { return r.issues }

// FileErrors are the files that could not be opened or read to their end (a
// truncated gzip stream, an I/O error); what was read before the error was returned.
func (r *Reader) FileErrors() []Issue { return r.fileErrors }

// BytesRead is the number of bytes read from the files so far (compressed bytes for
// gzip files), safe to call from another goroutine.
func (r *Reader) BytesRead() int64 { return r.bytesRead.Load() }

// TotalBytes is the sum of the inputs' sizes, -1 when one is unknown (stdin).
func (r *Reader) TotalBytes() int64 { return r.total }

// Close closes the file being read, when the caller stops before the end.
func (r *Reader) Close() {
	if r.src != nil {
		r.src.close()
		r.src = nil
	}
}

func (r *Reader) issue(file string, line int, reason string) {
	r.issueCount++
	if len(r.issues) < r.opts.MaxIssues {
		r.issues = append(r.issues, Issue{File: file, Line: line, Reason: reason})
	}
}

func (r *Reader) fileError(file string, err error) {
	r.fileErrors = append(r.fileErrors, Issue{File: file, Reason: err.Error()})
}

// counter counts the bytes read from a file, for the progress display.
type counter struct {
	r io.Reader
	n *atomic.Int64
}

func (c counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type mode int

const (
	modeUnknown mode = iota
	modeLines
	modeDocument
)

// source is one open input.
type source struct {
	name   string
	closer io.Closer
	gz     *gzip.Reader
	br     *bufio.Reader
	// lineNo is the number of lines consumed so far.
	lineNo int
	mode   mode
	doc    *splitter
}

func (r *Reader) open(in Input) (*source, error) {
	var raw io.Reader
	var closer io.Closer
	name := in.Path
	if in.Path == Stdin {
		raw, name = r.opts.Stdin, "<stdin>"
	} else {
		f, err := os.Open(in.Path)
		if err != nil {
			return nil, fmt.Errorf("opening audit log: %w", err)
		}
		raw, closer = f, f
	}
	br := bufio.NewReaderSize(counter{raw, &r.bytesRead}, r.opts.BufferSize)
	s := &source{name: name, closer: closer, br: br}
	// gzip is recognised by its magic number, not the file name: rotated files are
	// sometimes renamed, and stdin has no name.
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("reading gzip header: %w", err)
		}
		s.gz = gz
		s.br = bufio.NewReaderSize(gz, r.opts.BufferSize)
	}
	return s, nil
}

func (s *source) close() {
	if s.gz != nil {
		s.gz.Close()
	}
	if s.closer != nil {
		s.closer.Close()
	}
}

// nextValue returns the next non-empty line (or JSON value in document mode) and the
// line it starts on; io.EOF at the end; another error when the file cannot be read
// further (reported by the caller as a file error).
func (s *source) nextValue(r *Reader) ([]byte, int, error) {
	if s.mode == modeDocument {
		return s.doc.next(r, s.name)
	}
	for {
		line, err := s.readLine(r)
		if err != nil {
			return nil, 0, err
		}
		if s.lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
		}
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) == 0 {
			continue // empty lines carry nothing; not counted as unreadable
		}
		if s.mode == modeUnknown {
			// The first line decides: a JSON object or array still open at its end
			// means a whole-document file (pretty-printed event, EventList, array).
			s.mode = modeLines
			if (trimmed[0] == '{' || trimmed[0] == '[') && openAtEnd(trimmed) {
				s.mode = modeDocument
				first := append(append([]byte(nil), line...), '\n')
				s.doc = newSplitter(io.MultiReader(bytes.NewReader(first), s.br), s.lineNo, r.opts.MaxValue)
				return s.doc.next(r, s.name)
			}
		}
		return line, s.lineNo, nil
	}
}

// readLine returns the next line without its "\n" or "\r\n". A line longer than
// MaxValue is consumed to its end and reported, and the next line is returned.
// At the end of the data it returns io.EOF; a read error ends the file.
func (s *source) readLine(r *Reader) ([]byte, error) {
	r.long = r.long[:0]
	size, tooLong := 0, false
	for {
		frag, err := s.br.ReadSlice('\n')
		size += len(frag)
		if errors.Is(err, bufio.ErrBufferFull) {
			if !tooLong {
				if size > r.opts.MaxValue {
					tooLong, r.long = true, r.long[:0]
				} else {
					r.long = append(r.long, frag...)
				}
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			if size > 0 {
				r.issue(s.name, s.lineNo+1, fmt.Sprintf("line of %d bytes cut short by a read error", size))
			}
			return nil, fmt.Errorf("reading after line %d: %w", s.lineNo, err)
		}
		if size == 0 {
			return nil, io.EOF
		}
		s.lineNo++
		if tooLong {
			r.issue(s.name, s.lineNo, fmt.Sprintf("line of %d bytes is longer than the limit of %d bytes, skipped", size, r.opts.MaxValue))
			r.long = r.long[:0]
			if err != nil {
				return nil, io.EOF
			}
			size, tooLong = 0, false
			continue
		}
		line := frag
		if len(r.long) > 0 {
			r.long = append(r.long, frag...)
			line = r.long
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		return line, nil
	}
}

// openAtEnd reports whether the JSON text b leaves an object or array open: the
// first line of a pretty-printed document.
func openAtEnd(b []byte) bool {
	var n nesting
	for _, c := range b {
		if n.step(c) && n.depth == 0 {
			return false
		}
	}
	return n.depth > 0
}

// nesting follows the depth of objects and arrays through JSON text, byte by byte,
// ignoring brackets inside strings.
type nesting struct {
	depth      int
	inStr, esc bool
}

// step takes the next byte and reports whether it closed an object or array.
func (n *nesting) step(c byte) (closed bool) {
	switch {
	case n.inStr:
		switch {
		case n.esc:
			n.esc = false
		case c == '\\':
			n.esc = true
		case c == '"':
			n.inStr = false
		}
	case c == '"':
		n.inStr = true
	case c == '{' || c == '[':
		n.depth++
	case c == '}' || c == ']':
		n.depth--
		return true
	}
	return false
}
