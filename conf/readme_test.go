package conf

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeDocumentsEveryProperty keeps the configuration reference honest: every
// property the parsers read has a row in README.md with its default.
func TestReadmeDocumentsEveryProperty(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, plugin := range []struct {
		name  string
		props []Property
	}{
		{auditPlugin, AuditProperties},
		{eventsPlugin, EventsProperties},
	} {
		var missing []string
		for _, p := range plugin.props {
			def := "(empty)"
			if p.Default != "" {
				def = "`" + p.Default + "`"
			}
			row := "| `" + p.Name + "` | " + def + " |"
			if !strings.Contains(string(readme), row) {
				missing = append(missing, row)
			}
		}
		if len(missing) > 0 {
			t.Errorf("README.md lacks rows for %s (%d of %d properties), each starting:\n\t%s",
				plugin.name, len(missing), len(plugin.props), strings.Join(missing, "\n\t"))
		}
	}
}
