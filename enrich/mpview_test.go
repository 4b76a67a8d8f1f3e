package enrich

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func packed(t *testing.T, v any) mpv {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestMpvReadsWhatMsgpackWrites reads every integer and string width that
// vmihailenco/msgpack writes, and the maps and arrays derive walks.
func TestMpvReadsWhatMsgpackWrites(t *testing.T) {
	for _, n := range []int64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
		-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64} {
		if got := packed(t, n).int64(); got != n {
			t.Errorf("int %d read as %d", n, got)
		}
	}
	for _, v := range []any{uint64(math.MaxUint64), 1.5, "401", true, nil} {
		if got := packed(t, v).int64(); got != 0 {
			t.Errorf("%v read as int %d, want 0 (fastjson's GetInt64)", v, got)
		}
	}
	for _, n := range []int{0, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("s", n)
		if got := packed(t, s).str(); string(got) != s {
			t.Errorf("string of %d read as %d bytes", n, len(got))
		}
	}
	if packed(t, 7).str() != nil {
		t.Error("an int read as a string")
	}
	big := map[string]any{}
	for i := 0; i < 20; i++ {
		big[strings.Repeat("k", i+1)] = []any{i, "v", map[string]any{"x": nil}}
	}
	m := packed(t, map[string]any{"a": "1", "big": big, "list": []any{"x", 2, []any{}}, "z": int64(-5)})
	if string(m.get("a").str()) != "1" || m.get("z").int64() != -5 || m.get("missing") != nil {
		t.Fatalf("get: %q %d", m.get("a").str(), m.get("z").int64())
	}
	if got := m.get("big").get(strings.Repeat("k", 20)).get("x"); got != nil {
		t.Fatalf("a key of an array read as a map's: % x", got)
	}
	var items []string
	m.get("list").items(func(v mpv) { items = append(items, string(v)) })
	if len(items) != 3 || items[0] != "\xa1x" {
		t.Fatalf("items: %q", items)
	}
	keys := 0
	m.get("big").visit(func(k []byte, v mpv) {
		keys++
		if size(v) != len(v) {
			t.Fatalf("value of %s: size %d, view %d", k, size(v), len(v))
		}
	})
	if keys != 20 {
		t.Fatalf("visited %d keys of 20", keys)
	}
	// A view cut short anywhere reads as absent, without panicking.
	for i := 0; i < len(m); i++ {
		cut := m[:i]
		_ = cut.get("z").int64()
		_ = cut.get("a").str()
		cut.get("big").visit(func([]byte, mpv) {})
		cut.get("list").items(func(mpv) {})
		if size(cut) >= 0 {
			t.Fatalf("a view cut at %d of %d has size %d", i, len(m), size(cut))
		}
	}
}
