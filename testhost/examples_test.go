package testhost_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleConfigsInRealFluentBit runs every example configuration in conf/ as a user
// would (from the repository root, after make) and checks that the bundled sample comes
// out enriched, with the recommended drop rule applied and no error logged.
func TestExampleConfigsInRealFluentBit(t *testing.T) {
	fluentBit(t)
	paths(t)
	configs, _ := filepath.Glob("../conf/*.conf")
	yamls, _ := filepath.Glob("../conf/*.yaml")
	configs = append(configs, yamls...)
	if len(configs) < 2 {
		t.Fatalf("expected the classic and the YAML example in conf/, found %v", configs)
	}
	// 12 sample events; the example's drop rule removes a /readyz probe and a lease renewal.
	const want = 10
	for _, cfg := range configs {
		t.Run(filepath.Base(cfg), func(t *testing.T) {
			run := runFluentBit(t, "..", strings.TrimPrefix(cfg, "../"), want)
			got, logs := run.records(t), run.Log
			if len(got) != want {
				t.Fatalf("%d records, want %d", len(got), want)
			}
			for _, m := range got {
				if m["outcome"] == nil || m["auditID"] == nil || m["parse_error"] != nil || m["request_path"] == "/readyz" {
					t.Errorf("record not enriched as configured: %v", m)
				}
			}
			if strings.Contains(logs, "[error]") || !strings.Contains(logs, "dropped=2") {
				t.Errorf("unexpected Fluent Bit log:\n%s", logs)
			}
		})
	}
}
