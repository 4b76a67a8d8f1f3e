package auditlog

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type unit struct {
	Line int
	Text string
}

// readAll reads every text of the inputs, with its line.
func readAll(t *testing.T, r *Reader) []unit {
	t.Helper()
	var out []unit
	for r.Next() {
		_, line := r.Pos()
		out = append(out, unit{line, string(r.Text())})
	}
	return out
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gz(t *testing.T, content string) string {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(content))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestLines(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "a.log", "{\"a\":1}\r\n\n   \n{\"b\":2}\n{\"c\":3}")
	r := NewReader([]Input{{Path: p, Size: 1}}, Options{})
	got := readAll(t, r)
	want := []unit{{1, `{"a":1}`}, {4, `{"b":2}`}, {5, `{"c":3}`}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if r.IssueCount() != 0 || len(r.FileErrors()) != 0 {
		t.Fatalf("issues %v, file errors %v", r.Issues(), r.FileErrors())
	}
}

func TestLongLines(t *testing.T) {
	dir := t.TempDir()
	// Lines over bufio.Scanner's 64 KiB default and over the 1 MiB read buffer are
	// whole; a line over MaxValue is skipped, reported, and the next line is read.
	l64k := `{"x":"` + strings.Repeat("a", 70<<10) + `"}`
	l2m := `{"x":"` + strings.Repeat("b", 2<<20) + `"}`
	l5m := `{"x":"` + strings.Repeat("c", 5<<20) + `"}`
	p := write(t, dir, "long.log", l64k+"\n"+l2m+"\n"+l5m+"\n{\"after\":1}\n"+l5m)
	r := NewReader([]Input{{Path: p}}, Options{MaxValue: 4 << 20})
	got := readAll(t, r)
	want := []unit{{1, l64k}, {2, l2m}, {4, `{"after":1}`}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %d units, want %d (lengths %d %d)", len(got), len(want), len(got[0].Text), len(got[1].Text))
	}
	if r.IssueCount() != 2 {
		t.Fatalf("issue count %d, want 2: %v", r.IssueCount(), r.Issues())
	}
	for i, line := range []int{3, 5} {
		is := r.Issues()[i]
		if is.File != p || is.Line != line || !strings.Contains(is.Reason, "longer than the limit of 4194304 bytes") {
			t.Errorf("issue %d = %v", i, is)
		}
	}
}

func TestSmallBuffer(t *testing.T) {
	// Lines longer than the read buffer are assembled exactly, CRLF included.
	var b strings.Builder
	var want []unit
	for i := 1; i <= 50; i++ {
		l := fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("z", i*37))
		b.WriteString(l + "\r\n")
		want = append(want, unit{i, l})
	}
	p := write(t, t.TempDir(), "a.log", b.String())
	got := readAll(t, NewReader([]Input{{Path: p}}, Options{BufferSize: 16}))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("mismatch: got %d units", len(got))
	}
}

func TestGzip(t *testing.T) {
	dir := t.TempDir()
	content := "{\"a\":1}\n{\"b\":2}\n"
	// By magic number, whatever the name; multi-member streams (concatenated gzip
	// files) are read whole.
	p1 := write(t, dir, "a.log.gz", gz(t, content))
	p2 := write(t, dir, "renamed.log", gz(t, "{\"c\":3}\n")+gz(t, "{\"d\":4}\n"))
	r := NewReader([]Input{{Path: p1}, {Path: p2}}, Options{})
	got := readAll(t, r)
	want := []unit{{1, `{"a":1}`}, {2, `{"b":2}`}, {1, `{"c":3}`}, {2, `{"d":4}`}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	if len(r.FileErrors()) != 0 || r.IssueCount() != 0 {
		t.Fatal(r.FileErrors(), r.Issues())
	}
	st1, _ := os.Stat(p1)
	st2, _ := os.Stat(p2)
	if r.BytesRead() != st1.Size()+st2.Size() {
		t.Errorf("BytesRead %d, want the compressed sizes %d", r.BytesRead(), st1.Size()+st2.Size())
	}
}

func TestTruncatedGzip(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&b, "{\"i\":%d,\"pad\":\"%s\"}\n", i, strings.Repeat("p", i%50))
	}
	full := gz(t, b.String())
	p := write(t, dir, "cut.log.gz", full[:len(full)/2])
	next := write(t, dir, "next.log", "{\"next\":1}\n")
	r := NewReader([]Input{{Path: p}, {Path: next}}, Options{})
	got := readAll(t, r)
	if len(got) == 0 || len(got) >= 2000 {
		t.Fatalf("read %d lines from half a gzip stream", len(got))
	}
	for i, u := range got[:len(got)-1] {
		if u.Text != fmt.Sprintf("{\"i\":%d,\"pad\":\"%s\"}", i, strings.Repeat("p", i%50)) {
			t.Fatalf("line %d = %q", i+1, u.Text)
		}
	}
	if got[len(got)-1].Text != `{"next":1}` {
		t.Fatalf("the next file was not read after the error: last %q", got[len(got)-1].Text)
	}
	fe := r.FileErrors()
	if len(fe) != 1 || fe[0].File != p || !strings.Contains(fe[0].Reason, "unexpected EOF") {
		t.Fatalf("file errors %v", fe)
	}
}

func TestNotGzipHeader(t *testing.T) {
	p := write(t, t.TempDir(), "bad.gz", "\x1f\x8bnot really gzip")
	r := NewReader([]Input{{Path: p}}, Options{})
	if got := readAll(t, r); len(got) != 0 {
		t.Fatal(got)
	}
	if fe := r.FileErrors(); len(fe) != 1 || !strings.Contains(fe[0].Reason, "gzip") {
		t.Fatalf("file errors %v", fe)
	}
}

func TestMissingFile(t *testing.T) {
	if _, err := Expand([]string{"/nonexistent/audit.log"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/audit.log") {
		t.Fatalf("err = %v", err)
	}
	// A file that vanishes between Expand and reading is a file error, not a crash.
	r := NewReader([]Input{{Path: "/nonexistent/audit.log"}}, Options{})
	if r.Next() || len(r.FileErrors()) != 1 {
		t.Fatal(r.FileErrors())
	}
}

func TestStdin(t *testing.T) {
	r := NewReader([]Input{{Path: Stdin, Size: -1}}, Options{Stdin: strings.NewReader(gz(t, "{\"a\":1}\n"))})
	got := readAll(t, r)
	if !reflect.DeepEqual(got, []unit{{1, `{"a":1}`}}) || r.TotalBytes() != -1 {
		t.Fatal(got, r.TotalBytes())
	}
	if f, _ := r.Pos(); f != "<stdin>" {
		t.Fatal(f)
	}
}

func TestDocuments(t *testing.T) {
	ev := func(id string) map[string]any {
		return map[string]any{"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": id, "verb": "get"}
	}
	indent := func(v any) string {
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	}
	compact := func(s string) string {
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(s)); err != nil {
			t.Fatalf("not JSON: %q: %v", s, err)
		}
		return b.String()
	}
	list := map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": []any{ev("1"), ev("2")}}
	for _, c := range []struct {
		name, content string
		want          []unit // texts compacted before comparison
		issues        []string
	}{
		{"pretty event", "\xef\xbb\xbf" + indent(ev("1")) + "\n", []unit{{1, compact(indent(ev("1")))}}, nil},
		{"pretty events, jq style", indent(ev("1")) + "\n" + indent(ev("2")) + "\n",
			[]unit{{1, compact(indent(ev("1")))}, {7, compact(indent(ev("2")))}}, nil},
		{"EventList", indent(list), []unit{{1, compact(indent(list))}}, nil},
		{"array split into elements", indent([]any{ev("1"), ev("2")}),
			[]unit{{2, compact(indent(ev("1")))}, {8, compact(indent(ev("2")))}}, nil},
		{"array with junk", "[\n" + indent(ev("1")) + ",\n 42,\n" + indent(ev("2")) + "\n]\n",
			[]unit{{2, compact(indent(ev("1")))}, {8, "42"}, {9, compact(indent(ev("2")))}}, nil},
		{"braces inside strings", "{\n \"a\": \"}{][\\\"\"\n}\n", []unit{{1, `{"a":"}{][\""}`}}, nil},
		{"unclosed", indent(ev("1")) + "\n{\n \"auditID\": \"x\",\n", []unit{{1, compact(indent(ev("1")))}},
			[]string{":7: JSON value of 19 bytes not closed at the end of the file"}},
		{"unclosed array", "[\n" + indent(ev("1")) + ",\n", []unit{{2, compact(indent(ev("1")))}},
			[]string{":8: JSON array not closed at the end of the file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, t.TempDir(), "doc.json", c.content)
			r := NewReader([]Input{{Path: p}}, Options{})
			got := readAll(t, r)
			for i := range got {
				if got[i].Text != "42" {
					got[i].Text = compact(got[i].Text)
				}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v\nwant %v", got, c.want)
			}
			var issues []string
			for _, is := range r.Issues() {
				issues = append(issues, strings.TrimPrefix(is.String(), p))
			}
			if !reflect.DeepEqual(issues, c.issues) || r.IssueCount() != int64(len(c.issues)) {
				t.Errorf("issues %q, want %q", issues, c.issues)
			}
		})
	}
}

func TestDocumentTooLong(t *testing.T) {
	big := "{\n \"x\": \"" + strings.Repeat("q", 5000) + "\"\n}\n"
	p := write(t, t.TempDir(), "doc.json", big+"{\n \"ok\": 1\n}\n")
	r := NewReader([]Input{{Path: p}}, Options{MaxValue: 1000})
	got := readAll(t, r)
	if len(got) != 1 || got[0].Line != 4 {
		t.Fatalf("got %v", got)
	}
	if r.IssueCount() != 1 || r.Issues()[0].Line != 1 || !strings.Contains(r.Issues()[0].Reason, "longer than the limit of 1000 bytes") {
		t.Fatal(r.Issues())
	}
}

func TestSkipCounts(t *testing.T) {
	var b strings.Builder
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	p := write(t, t.TempDir(), "a.log", b.String())
	r := NewReader([]Input{{Path: p}}, Options{MaxIssues: 5})
	for r.Next() {
		r.Skip("not an audit event")
	}
	if r.IssueCount() != 30 || len(r.Issues()) != 5 || r.Issues()[4].String() != p+":5: not an audit event" {
		t.Fatal(r.IssueCount(), r.Issues())
	}
}
