package auditlog

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzReader: any input is read without a panic, in bounded memory, every text is
// non-empty, and in a file of one JSON object per line every line comes out as it is.
func FuzzReader(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n{\"b\":2}\r\n\n"))
	f.Add([]byte("{\n \"a\": [1, {\"b\": \"}\"}]\n}\n[\n{},\n42\n]"))
	f.Add([]byte("[{\"a\":1},{\"b\":\"\\\"]\"}]"))
	f.Add([]byte("\x1f\x8b\x08\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader([]Input{{Path: Stdin, Size: -1}}, Options{Stdin: bytes.NewReader(data), MaxValue: 1 << 16, BufferSize: 16})
		for r.Next() {
			if len(r.Text()) == 0 {
				t.Fatal("empty text")
			}
			if len(r.Text()) > 1<<16 {
				t.Fatalf("text of %d bytes over MaxValue", len(r.Text()))
			}
		}
	})
}

func FuzzLines(f *testing.F) {
	f.Add("a\nb", 3)
	f.Fuzz(func(t *testing.T, s string, n int) {
		n = n%5 + 1
		var want []string
		var b strings.Builder
		for i := 0; i < n; i++ {
			line := `{"l":"` + strings.Map(func(r rune) rune {
				if r == '\n' || r == '\r' || r == '"' || r == '\\' || r < 0x20 || r == 0xfeff {
					return 'x'
				}
				return r
			}, s) + `"}`
			want = append(want, line)
			b.WriteString(line + "\n")
		}
		r := NewReader([]Input{{Path: Stdin, Size: -1}}, Options{Stdin: strings.NewReader(b.String()), BufferSize: 16})
		var got []string
		for r.Next() {
			got = append(got, string(r.Text()))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") || r.IssueCount() != 0 {
			t.Fatalf("got %q, want %q (issues %v)", got, want, r.Issues())
		}
	})
}
