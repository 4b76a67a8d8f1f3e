package enrich

import (
	"testing"
	"time"
)

func TestParseTimeMatchesTimeParse(t *testing.T) {
	for _, s := range []string{
		"2025-03-04T06:22:18.819232Z",
		"2018-10-26T13:00:25Z",
		"2000-02-29T23:59:59.999999999Z",
		"1970-01-01T00:00:00Z",
		"2100-12-31T00:00:00.1Z",
		"2025-03-04T08:22:18.819232+02:00",
	} {
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseTime([]byte(s))
		if !ok || got.Sec != want.Unix() || got.Nsec != int64(want.Nanosecond()) {
			t.Errorf("parseTime(%q) = %+v, %v; want %d.%09d", s, got, ok, want.Unix(), want.Nanosecond())
		}
	}
	for _, s := range []string{"", "2025-13-04T06:22:18Z", "2025-03-04 06:22:18Z", "2025-03-04T06:22:18.Z", "yesterday"} {
		if _, ok := parseTime([]byte(s)); ok {
			t.Errorf("parseTime(%q) accepted a malformed time", s)
		}
	}
}

func TestTimeSubMicroseconds(t *testing.T) {
	a, _ := parseTime([]byte("2025-03-04T06:22:18.819232Z"))
	b, _ := parseTime([]byte("2025-03-04T06:22:18.822532Z"))
	if d := b.sub(a); d != 3.3 {
		t.Fatalf("duration = %v ms, want 3.3", d)
	}
	if d := a.sub(b); d != -3.3 {
		t.Fatalf("negative duration = %v ms, want -3.3", d)
	}
}
