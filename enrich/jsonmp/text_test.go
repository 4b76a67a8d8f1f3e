package jsonmp

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/kubetrail/kubetrail/test/repo"
)

// treePairs is the reference AppendPairs must match: fastjson's tree of text, its
// top-level pairs written by AppendValue. ok is false when fastjson refuses the text,
// it is no object, or a number in it is not JSON (the cases AppendPairs leaves to the
// parser).
func treePairs(text []byte, skip string) (out []byte, keys []string, ok bool) {
	var p fastjson.Parser
	v, err := p.ParseBytes(text)
	if err != nil || v.Type() != fastjson.TypeObject {
		return nil, nil, false
	}
	o, _ := v.Object()
	ok = true
	o.Visit(func(k []byte, item *fastjson.Value) {
		if string(k) == skip {
			// Still written aside: a bad number under a skipped key is still bad.
			if _, err := AppendValue(nil, item, 1); err != nil {
				ok = false
			}
			return
		}
		keys = append(keys, string(k))
		out = AppendStringBytes(out, k)
		var err error
		if out, err = AppendValue(out, item, 1); err != nil {
			ok = false
		}
	})
	return out, keys, ok
}

// checkPairs compares AppendPairs with the tree on one text: equal bytes, and the
// fields at the right places, whenever AppendPairs writes; a fallback only when needed
// or allowed (allowFallback: texts the tree takes that AppendPairs may leave to it,
// such as nesting deeper than fallbackDepth).
func checkPairs(t *testing.T, text []byte, allowFallback bool) {
	t.Helper()
	const skip = "skipme"
	want, wantKeys, ok := treePairs(text, skip)
	prefix := []byte{0xc0, 0xc3} // AppendPairs appends: what dst had stays
	got, fields, err := new(TextWriter).AppendPairs(bytes.Clone(prefix), text, nil, func(k []byte) Action {
		if string(k) == skip {
			return Skip
		}
		return Write
	})
	if err != nil {
		if !errors.Is(err, ErrFallback) {
			t.Fatalf("%q: %v", text, err)
		}
		if !bytes.Equal(got, prefix) {
			t.Fatalf("%q: after a fallback dst is % x, want it as it was", text, got)
		}
		if ok && !allowFallback {
			t.Fatalf("%q: left to the parser, which writes % x", text, want)
		}
		return
	}
	if !ok {
		t.Fatalf("%q: written (% x), but fastjson refuses it or a number is not JSON", text, got)
	}
	if !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("%q:\n got % x\nwant % x", text, got[len(prefix):], want)
	}
	if len(fields) != len(wantKeys) {
		t.Fatalf("%q: %d fields, want %d", text, len(fields), len(wantKeys))
	}
	for i, f := range fields {
		if k := string(keyBytes(got[f.Key:])); k != wantKeys[i] || f.Value <= f.Key || f.End < f.Value {
			t.Fatalf("%q: field %d is %q at %+v, want %q", text, i, k, f, wantKeys[i])
		}
		if i+1 < len(fields) && fields[i+1].Key != f.End {
			t.Fatalf("%q: field %d ends at %d, the next starts at %d", text, i, f.End, fields[i+1].Key)
		}
	}
}

func TestAppendPairsAgrees(t *testing.T) {
	long := strings.Repeat("x", 40)
	var many, deep strings.Builder
	many.WriteString(`{"m":{`)
	for i := 0; i < 20; i++ {
		if i > 0 {
			many.WriteByte(',')
		}
		many.WriteString(`"k` + strings.Repeat("y", i) + `":[` + strings.Repeat("1,", 17) + `1]`)
	}
	many.WriteString(`}}`)
	deep.WriteString(`{"d":` + strings.Repeat("[", 60) + strings.Repeat("]", 60) + `}`)
	for _, text := range []string{
		`{}`, ` { } `, "\t{\n\"a\" :\r1 }\n",
		`{"a":"b","c":[1,-2,3.5,1e3,-0,0.0,18446744073709551615,9223372036854775808,-9223372036854775809,1e400,-1e400,1e-400],"d":{"e":null,"f":true,"g":false}}`,
		`{"s":"` + long + `","k` + long + `":"v"}`,
		`{"esc":"a\"b\\c\/d\b\f\n\r\t","u":"\u00e9\u0026\u003c\u0000","pair":"\ud83d\ude00","lone":"\ud800","half":"\ud800x","bad":"\ud800\u0041","hex":"\uzzzz","short":"\u12","unk":"\q"}`,
		`{"k\"ey":1,"k\\":2,"\u0061":3}`,
		`{"dup":1,"dup":2}`,
		`{"skipme":{"x":[1,2]},"kept":1,"skipme":"again"}`,
		`{"a":"` + strings.Repeat("\\\\", 3) + `"}`,
		many.String(), deep.String(),
		"{\"ctl\":\"a\x01b\"}",
		// Left to the parser (fastjson refuses them, or a number is not JSON):
		`{"a":1,}`, `{"a" 1}`, `{"a":}`, `{"a":tru}`, `{"a":nul}`, `{"a":[1,]}`, `{"a":1} x`, `{"a":"x}`,
		`{"n":NaN}`, `{"n":+1}`, `{"n":012}`, `{"n":1.}`, `{"n":-}`, `{"n":inf}`, `[1]`, `"s"`, `1`, ``, `{`,
		`{"skipme":012,"a":1}`,
	} {
		checkPairs(t, []byte(text), false)
	}
	// Deeper than fallbackDepth: the parser's.
	checkPairs(t, []byte(`{"d":`+strings.Repeat("[", 80)+strings.Repeat("]", 80)+`}`), true)
}

// TestAppendPairsAuditLogs checks every line of the repository's audit logs, and of
// the shared corpora of real apiservers when ../shared is there (their .json files
// are one document each).
func TestAppendPairsAuditLogs(t *testing.T) {
	files, _ := filepath.Glob("../testdata/*.log")
	shared := repo.SharedAuditFiles(t, "*.log")
	n := 0
	for _, f := range repo.SharedAuditFiles(t, "*.json") { // one document each
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkPairs(t, b, false)
		n++
	}
	for _, f := range append(files, shared...) {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			checkPairs(t, sc.Bytes(), false)
			n++
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if n < 600 {
		t.Fatalf("only %d lines checked", n)
	}
	t.Logf("%d lines of %d files", n, len(files)+len(shared))
}

func TestAppendPairsStop(t *testing.T) {
	dst, fields, err := new(TextWriter).AppendPairs([]byte{1}, []byte(`{"a":1,"stop":2,"b":3}`), nil, func(k []byte) Action {
		if string(k) == "stop" {
			return Stop
		}
		return Write
	})
	if !errors.Is(err, ErrStop) || !bytes.Equal(dst, []byte{1}) || len(fields) != 1 {
		t.Fatalf("err %v, dst % x, fields %v", err, dst, fields)
	}
}

// FuzzAppendPairs: on any text, AppendPairs writes what the tree writes, or leaves it
// to the parser; it never writes what fastjson refuses.
func FuzzAppendPairs(f *testing.F) {
	for _, s := range []string{`{"a":"b\u00e9","c":[1,2.5,{"d":null}],"skipme":true}`, `{"x":"\ud83d\ude00"}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		checkPairs(t, text, bytes.Count(text, []byte("["))+bytes.Count(text, []byte("{")) > fallbackDepth)
	})
}

// TestCopyText checks the eight-bytes-at-a-time search and copy against
// bytes.IndexAny at every length and position, with bytes around the targets that
// differ from them by one bit or sit next to them (the borrows SWAR must not mistake).
func TestCopyText(t *testing.T) {
	for n := 0; n <= 40; n++ {
		for _, fill := range []byte{'a', '"' ^ 1, '\\' ^ 0x80, 0x00, 0xff, '!', '#', '[', ']'} {
			for pos := -1; pos < n; pos++ {
				for _, c := range []byte{'"', '\\'} {
					b := bytes.Repeat([]byte{fill}, n)
					if pos >= 0 {
						b[pos] = c
						if pos+2 < n {
							b[pos+2] = '"'
						}
					}
					want := bytes.IndexAny(b, "\"\\")
					if want < 0 {
						want = n
					}
					dst := make([]byte, n+8)
					if got := copyText(dst, b); got != want || !bytes.Equal(dst[:got], b[:want]) {
						t.Fatalf("%q: %d (copied %q), want %d", b, got, dst[:max(got, 0)], want)
					}
				}
			}
		}
	}
}
