package conf

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeDocumentsEveryProperty keeps the configuration reference honest: every
// property the parsers read has a row with its default in its plugin's reference page,
// docs/k8s-audit.md for k8s_audit and docs/k8s-events.md for k8s_events (the
// Configuration tables; README.md only links to them).
func TestReadmeDocumentsEveryProperty(t *testing.T) {
	for _, plugin := range []struct {
		name  string
		page  string
		props []Property
	}{
		{auditPlugin, "../docs/k8s-audit.md", AuditProperties},
		{eventsPlugin, "../docs/k8s-events.md", EventsProperties},
	} {
		doc, err := os.ReadFile(plugin.page)
		if err != nil {
			t.Fatal(err)
		}
		var missing []string
		for _, p := range plugin.props {
			def := "(empty)"
			if p.Default != "" {
				def = "`" + p.Default + "`"
			}
			row := "| `" + p.Name + "` | " + def + " |"
			if !strings.Contains(string(doc), row) {
				missing = append(missing, row)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s lacks rows for %s (%d of %d properties), each starting:\n\t%s",
				plugin.page, plugin.name, len(missing), len(plugin.props), strings.Join(missing, "\n\t"))
		}
	}
}
