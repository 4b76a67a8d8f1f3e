package k8sevents

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/valyala/fastjson"
)

// readAll reads list with a listReader through r, returning the metadata and the items
// as fastjson writes them back, and where the metadata came among the items.
func readAll(t *testing.T, lr *listReader, r io.Reader) (listMeta, []string, int, error) {
	t.Helper()
	var m listMeta
	var items []string
	metaAt := -1
	err := lr.read(r, func(lm listMeta) error {
		if metaAt >= 0 {
			t.Fatal("meta called twice")
		}
		m, metaAt = lm, len(items)
		return nil
	}, func(raw []byte) error {
		v, err := fastjson.ParseBytes(raw)
		if err != nil {
			return err
		}
		items = append(items, v.String())
		return nil
	})
	return m, items, metaAt, err
}

// TestListReader reads lists the way the API server writes them and odder ones (items
// before metadata, brackets and escaped quotes inside strings, white space, null items)
// whole and one byte per Read, and checks the items against fastjson's parse of the
// whole document.
func TestListReader(t *testing.T) {
	big := strings.Repeat(`{\"x\":[1,2]} `, 20000) // larger than the window, inside a string
	cases := []struct {
		name, doc string
		rv, cont  string
	}{
		{"api server", `{"kind":"EventList","apiVersion":"v1","metadata":{"resourceVersion":"123","continue":"abc=="},"items":[{"metadata":{"name":"a","uid":"u1"},"message":"x ] } [ { \" \\"},{"metadata":{"name":"b"},"count":3,"eventTime":null,"f":1.5e3,"t":true}]}`, "123", "abc=="},
		{"last page", `{"metadata":{"resourceVersion":"9"},"items":[]}`, "9", ""},
		{"white space", " {\n \"metadata\" : { \"resourceVersion\" : \"9\" } ,\r\n\t\"items\" : [ {\"a\" : [ ] } , { } , 7 , \"s\" , null ] }\n", "9", ""},
		{"items first", `{"items":[{"a":1},{"b":{"c":[2]}}],"kind":"EventList","metadata":{"resourceVersion":"5","continue":"k"}}`, "5", "k"},
		{"null items", `{"metadata":{"resourceVersion":"5"},"items":null}`, "5", ""},
		{"no metadata", `{"items":[{"a":1}]}`, "", ""},
		{"large item", `{"metadata":{"resourceVersion":"1"},"items":[{"message":"` + big + `"},{"n":1}]}`, "1", ""},
	}
	var lr listReader // reused, as the input does
	for _, c := range cases {
		want := fastjson.MustParse(c.doc)
		var wantItems []string
		for _, v := range want.GetArray("items") {
			wantItems = append(wantItems, v.String())
		}
		for _, one := range []bool{false, true} {
			var r io.Reader = strings.NewReader(c.doc)
			if one {
				r = iotest.OneByteReader(r)
			}
			m, items, metaAt, err := readAll(t, &lr, r)
			if err != nil {
				t.Errorf("%s (one byte %v): %v", c.name, one, err)
				continue
			}
			if m.resourceVersion != c.rv || m.cont != c.cont {
				t.Errorf("%s: metadata %+v, want resourceVersion %q continue %q", c.name, m, c.rv, c.cont)
			}
			if metaAt != 0 {
				t.Errorf("%s: metadata given after %d items, want before all", c.name, metaAt)
			}
			if strings.Join(items, "\n") != strings.Join(wantItems, "\n") {
				t.Errorf("%s (one byte %v): items\n%q\nwant\n%q", c.name, one, items, wantItems)
			}
		}
	}
}

// TestListReaderErrors: a truncated or malformed list is an error, never a shorter
// list.
func TestListReaderErrors(t *testing.T) {
	good := `{"metadata":{"resourceVersion":"1"},"items":[{"a":"b"},{"c":1}]}`
	var lr listReader
	for i := 0; i < len(good)-1; i++ {
		_, items, _, err := readAll(t, &lr, strings.NewReader(good[:i]))
		if err == nil {
			t.Errorf("truncated after %d bytes (%q): no error, %d items", i, good[:i], len(items))
		}
	}
	for _, doc := range []string{
		`[]`,
		`{"metadata":{"resourceVersion":"1"} "items":[]}`,
		`{"metadata":{"resourceVersion":"1"},"items":[{"a":1} {"b":2}]}`,
		`{"metadata":{"resourceVersion":"1"},"items":{"a":1}}`,
		`{"metadata":[1],"items":[]}`,
		`{"metadata":{"resourceVersion":"1"},"items":[{"a":}]}`,
		`{metadata:{}}`,
	} {
		if _, _, _, err := readAll(t, &lr, strings.NewReader(doc)); err == nil {
			t.Errorf("%s: no error", doc)
		}
	}
	// A read error is returned as such.
	boom := errors.New("boom")
	_, _, _, err := readAll(t, &lr, io.MultiReader(strings.NewReader(good[:30]), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Errorf("read error: got %v, want boom", err)
	}
	// An error from the callback stops the read.
	stop := errors.New("stop")
	n := 0
	err = lr.read(bytes.NewReader([]byte(good)), func(listMeta) error { return nil }, func([]byte) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("callback error: got %v after %d items", err, n)
	}
}
