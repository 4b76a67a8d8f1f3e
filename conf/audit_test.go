package conf

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/kubetrail/kubetrail/enrich"
)

func mustRules(t *testing.T, s string) enrich.RuleSet {
	t.Helper()
	rs, err := enrich.ParseRules(s)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestParseAuditDefaults(t *testing.T) {
	got, err := ParseAudit(MapGetter{})
	if err != nil {
		t.Fatal(err)
	}
	want := Audit{
		Key:         "log",
		ReserveData: true,
		Enrich: enrich.Options{
			TimeSource:        enrich.TimeRequestReceived,
			Redact:            true,
			MaxObjectSize:     64 << 10,
			DropManagedFields: true,
			TopUsers:          20,
		},
		DedupMaxEntries: 1000000,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	// The documented defaults are what ParseAudit applies.
	g := MapGetter{}
	for _, p := range AuditProperties {
		if p.Default != "" {
			g[p.Name] = p.Default
		}
	}
	if again, err := ParseAudit(g); err != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("explicit defaults: %+v, %v", again, err)
	}
}

func TestParseAuditAllSet(t *testing.T) {
	g := MapGetter{
		"key":                 "  message ",
		"reserve_data":        "Off",
		"preserve_key":        "YES",
		"add_parse_error":     "1",
		"derived_key":         " k8s ",
		"time_source":         "Stage",
		"redact":              "false",
		"redact_exec_command": "true",
		"redact_paths":        " requestObject.spec.password , responseObject.data.* ,responseObject.x",
		"max_object_size":     "1M",
		"drop_managed_fields": "no",
		"keep":                "verb=create,update,patch,delete",
		"drop":                " stage=RequestReceived; nonresource=/healthz* ",
		"dedup":               "On",
		"dedup_file":          " /var/lib/kubetrail/audit-dedup ",
		"dedup_max_entries":   "2500000",
		"metrics":             "on",
		"metrics_top_users":   " 5",
	}
	got, err := ParseAudit(g)
	if err != nil {
		t.Fatal(err)
	}
	want := Audit{
		Key:           "message",
		ReserveData:   false,
		PreserveKey:   true,
		AddParseError: true,
		Enrich: enrich.Options{
			DerivedKey:        "k8s",
			TimeSource:        enrich.TimeStage,
			Redact:            false,
			RedactExecCommand: true,
			RedactPaths:       []string{"requestObject.spec.password", "responseObject.data.*", "responseObject.x"},
			MaxObjectSize:     1 << 20,
			DropManagedFields: false,
			Keep:              mustRules(t, "verb=create,update,patch,delete"),
			Drop:              mustRules(t, "stage=RequestReceived; nonresource=/healthz*"),
			Metrics:           true,
			TopUsers:          5,
		},
		Dedup:           true,
		DedupFile:       "/var/lib/kubetrail/audit-dedup",
		DedupMaxEntries: 2500000,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("all set:\n got %+v\nwant %+v", got, want)
	}
	for _, tc := range []struct {
		v  string
		ts enrich.TimeSource
	}{{"request_received", enrich.TimeRequestReceived}, {"stage", enrich.TimeStage}, {"KEEP", enrich.TimeKeep}} {
		a, err := ParseAudit(MapGetter{"time_source": tc.v})
		if err != nil || a.Enrich.TimeSource != tc.ts {
			t.Errorf("time_source %q: %v, %v", tc.v, a.Enrich.TimeSource, err)
		}
	}
}

func TestParseAuditBools(t *testing.T) {
	for _, v := range []string{"on", "ON", "true", "True", "yes", "Yes", "1", " on "} {
		a, err := ParseAudit(MapGetter{"preserve_key": v})
		if err != nil || !a.PreserveKey {
			t.Errorf("preserve_key=%q: %v, %v", v, a.PreserveKey, err)
		}
	}
	for _, v := range []string{"off", "OFF", "false", "FALSE", "no", "No", "0"} {
		a, err := ParseAudit(MapGetter{"reserve_data": v})
		if err != nil || a.ReserveData {
			t.Errorf("reserve_data=%q: %v, %v", v, a.ReserveData, err)
		}
	}
}

func TestParseAuditErrors(t *testing.T) {
	tests := []struct {
		name, value string
		err         string
	}{
		{"key", "  ", `k8s_audit: property "key": must not be empty`},
		{"reserve_data", "maybe", `k8s_audit: property "reserve_data": invalid boolean "maybe": want on/off, true/false, yes/no or 1/0`},
		{"preserve_key", "2", `property "preserve_key": invalid boolean "2"`},
		{"add_parse_error", "enabled", `property "add_parse_error": invalid boolean`},
		{"redact", "y", `property "redact": invalid boolean "y"`},
		{"redact_exec_command", "t", `property "redact_exec_command": invalid boolean`},
		{"drop_managed_fields", " ", `property "drop_managed_fields": invalid boolean ""`},
		{"derived_key", "a.b", `k8s_audit: property "derived_key": invalid key "a.b": must be one field name`},
		{"derived_key", "a b", `property "derived_key": invalid key "a b"`},
		{"time_source", "now", `k8s_audit: property "time_source": invalid time source "now": want request_received, stage or keep`},
		{"redact_paths", "spec.password", `k8s_audit: property "redact_paths": path "spec.password": must start with requestObject, responseObject`},
		{"redact_paths", "requestObject..x", `property "redact_paths": path "requestObject..x": empty element`},
		{"redact_paths", "requestObject.x.", `path "requestObject.x.": empty element`},
		{"redact_paths", "requestObject.a,,responseObject.b", `property "redact_paths": empty path`},
		{"redact_paths", "requestObject.a,", `property "redact_paths": empty path`},
		{"redact_paths", "requestObject.a responseObject.b", `spaces are not allowed`},
		{"max_object_size", "12x", `k8s_audit: property "max_object_size": invalid size "12x": unknown unit "x"`},
		{"max_object_size", "-1", `property "max_object_size": invalid size "-1": must not be negative`},
		{"max_object_size", "k", `invalid size "k": want a number`},
		{"max_object_size", "99999999999999999999", `invalid size "99999999999999999999": strconv.ParseInt`},
		{"max_object_size", "99999999999g", `invalid size "99999999999g": too large`},
		{"max_object_size", "1 k", `invalid size "1 k": unknown unit " k"`},
		{"keep", "verb", `k8s_audit: property "keep": rule "verb": "verb": missing '='`},
		{"drop", "foo=bar", `k8s_audit: property "drop": rule "foo=bar": unknown field "foo"`},
		{"dedup", "sometimes", `k8s_audit: property "dedup": invalid boolean "sometimes"`},
		{"dedup_file", "/tmp/x", `k8s_audit: property "dedup_file": set, but dedup is off: add dedup on`},
		{"dedup_max_entries", "0", `k8s_audit: property "dedup_max_entries": invalid number "0": want an integer from 1 to 100000000`},
		{"dedup_max_entries", "1m", `property "dedup_max_entries": invalid number "1m"`},
		{"metrics", "yes please", `property "metrics"`},
		{"metrics_top_users", "-1", `k8s_audit: property "metrics_top_users": invalid number "-1": want an integer from 0 to 1000`},
		{"metrics_top_users", "1001", `want an integer from 0 to 1000`},
		{"dedup_max_entries", "-5", `invalid number "-5"`},
		{"dedup_max_entries", "100000001", `invalid number "100000001"`},
	}
	for _, tt := range tests {
		a, err := ParseAudit(MapGetter{tt.name: tt.value})
		if err == nil {
			t.Errorf("%s=%q: no error, got %+v", tt.name, tt.value, a)
			continue
		}
		if !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s=%q: error %q, want it to contain %q", tt.name, tt.value, err, tt.err)
		}
		if !strings.Contains(err.Error(), strconv.Quote(tt.name)) {
			t.Errorf("%s=%q: error %q does not name the property", tt.name, tt.value, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true},
		{"off", 0, true},
		{"OFF", 0, true},
		{"false", 0, true},
		{"1", 1, true},
		{"65536", 65536, true},
		{"64k", 64 << 10, true},
		{"64K", 64 << 10, true},
		{"64kb", 64 << 10, true},
		{"64KB", 64 << 10, true},
		{"64Kb", 64 << 10, true},
		{"2m", 2 << 20, true},
		{"2M", 2 << 20, true},
		{"2mb", 2 << 20, true},
		{"2MB", 2 << 20, true},
		{"1g", 1 << 30, true},
		{"1GB", 1 << 30, true},
		{"0k", 0, true},
		{"007", 7, true},
		{"", 0, false},
		{"-1", 0, false},
		{"-1k", 0, false},
		{"12x", 0, false},
		{"1kbb", 0, false},
		{"1b", 0, false},
		{"1t", 0, false},
		{"k", 0, false},
		{"1.5m", 0, false},
		{"+5", 0, false},
		{"on", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	for _, n := range []int{0, 1, 1000, 1024, 65536, 3 << 20, 5 << 30, 1<<20 + 1} {
		s := FormatSize(n)
		if back, err := ParseSize(s); err != nil || back != n {
			t.Errorf("FormatSize(%d) = %q, parses back as %d, %v", n, s, back, err)
		}
	}
	if s := FormatSize(64 << 10); s != "64k" {
		t.Errorf("FormatSize(64k) = %q", s)
	}
}

// parseEffective turns Effective's pairs back into properties.
func parseEffective(t *testing.T, pairs []string) MapGetter {
	t.Helper()
	g := MapGetter{}
	for _, kv := range pairs {
		name, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("pair %q has no '='", kv)
		}
		if strings.HasPrefix(v, `"`) {
			var err error
			if v, err = strconv.Unquote(v); err != nil {
				t.Fatalf("pair %q: %v", kv, err)
			}
		}
		if _, dup := g[name]; dup {
			t.Fatalf("property %q reported twice", name)
		}
		g[name] = v
	}
	return g
}

func TestAuditEffective(t *testing.T) {
	for _, in := range []MapGetter{
		{},
		{
			"key": "message", "reserve_data": "off", "preserve_key": "on", "add_parse_error": "yes",
			"derived_key": "k8s", "time_source": "keep", "redact": "off", "redact_exec_command": "on",
			"redact_paths":    "requestObject.spec.password,responseObject.data.*",
			"max_object_size": "1000", "drop_managed_fields": "off",
			"keep": "verb=create,update user=!system:*", "drop": "stage=RequestReceived;code=4*",
			"dedup": "on", "dedup_file": "/state/audit dedup", "dedup_max_entries": "42",
		},
		{"dedup": "yes"},
		{"max_object_size": "0", "time_source": "stage"},
	} {
		a, err := ParseAudit(in)
		if err != nil {
			t.Fatal(err)
		}
		eff := a.Effective()
		if !reflect.DeepEqual(eff, a.Effective()) {
			t.Errorf("Effective is not stable: %q", eff)
		}
		if len(eff) != len(AuditProperties) {
			t.Fatalf("Effective has %d pairs, want %d: %q", len(eff), len(AuditProperties), eff)
		}
		for i, p := range AuditProperties {
			if !strings.HasPrefix(eff[i], p.Name+"=") {
				t.Errorf("Effective[%d] = %q, want property %q", i, eff[i], p.Name)
			}
		}
		g := parseEffective(t, eff)
		again, err := ParseAudit(g)
		if err != nil {
			t.Fatalf("parsing Effective %q: %v", eff, err)
		}
		if !reflect.DeepEqual(again, a) {
			t.Errorf("Effective does not round-trip:\n  in %+v\n out %+v\n via %q", a, again, eff)
		}
	}

	a, err := ParseAudit(MapGetter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"key=log", "reserve_data=on", "preserve_key=off", "add_parse_error=off", `derived_key=""`,
		"time_source=request_received", "redact=on", "redact_exec_command=off", `redact_paths=""`,
		"max_object_size=64k", "drop_managed_fields=on", `keep=""`, `drop=""`,
		"dedup=off", `dedup_file=""`, "dedup_max_entries=1000000",
		"metrics=off", "metrics_top_users=20",
	}
	if got := a.Effective(); !reflect.DeepEqual(got, want) {
		t.Errorf("Effective of defaults = %q, want %q", got, want)
	}
	b, err := ParseAudit(MapGetter{"keep": "verb=get  user=a;stage=Panic"})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Effective()[11]; got != `keep="verb=get user=a; stage=Panic"` {
		t.Errorf("keep pair = %q", got)
	}
}

func TestAuditProperties(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range AuditProperties {
		if seen[p.Name] {
			t.Errorf("property %q listed twice", p.Name)
		}
		seen[p.Name] = true
		if p.Name != strings.ToLower(p.Name) || p.Help == "" {
			t.Errorf("property %+v: want a lower-case name and help", p)
		}
	}
	// Every listed property is read: a bad value for it must fail (only key, derived_key,
	// redact_paths and the rules accept free text, so give each a value invalid for it).
	bad := map[string]string{"key": " ", "derived_key": "a.b", "redact_paths": "x", "keep": "x", "drop": "x"}
	for _, p := range AuditProperties {
		v, ok := bad[p.Name]
		if !ok {
			v = "not-valid"
		}
		if _, err := ParseAudit(MapGetter{p.Name: v}); err == nil {
			t.Errorf("property %q does not seem to be read", p.Name)
		}
	}
}
