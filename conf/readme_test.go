package conf

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeDocumentsEveryProperty keeps the configuration reference honest: every
// property the parser reads has a row in README.md with its default.
func TestReadmeDocumentsEveryProperty(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range AuditProperties {
		def := "(empty)"
		if p.Default != "" {
			def = "`" + p.Default + "`"
		}
		row := "| `" + p.Name + "` | " + def + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no row starting %q", row)
		}
	}
}
