package auditlog

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestExpandOrder(t *testing.T) {
	dir := t.TempDir()
	// A kube-apiserver directory (lumberjack backups, one compressed), a logrotate
	// one, files that are not audit logs, and a nested directory.
	for _, name := range []string{
		"audit.log",
		"audit-2025-11-20T10-15-32.123.log",
		"audit-2025-11-19T23-59-59.999.log.gz",
		"audit-2025-11-20T09-00-00.000.log",
		"notes.txt",
		".hidden.log",
		"other/audit.log.1",
		"other/audit.log.10.gz",
		"other/audit.log.2",
		"other/audit.log",
		"other/events.json",
		".git/x.log",
	} {
		write(t, dir, name, "{}\n")
	}
	got, err := Expand([]string{dir, filepath.Join(dir, "notes.txt")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range got {
		rel, _ := filepath.Rel(dir, in.Path)
		names = append(names, rel)
		if in.Size != 3 {
			t.Errorf("%s: size %d", rel, in.Size)
		}
	}
	want := []string{
		"audit-2025-11-19T23-59-59.999.log.gz",
		"audit-2025-11-20T09-00-00.000.log",
		"audit-2025-11-20T10-15-32.123.log",
		"audit.log",
		"other/audit.log.10.gz",
		"other/audit.log.2",
		"other/audit.log.1",
		"other/audit.log",
		"other/events.json",
		"notes.txt", // named explicitly: read whatever its name
	}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("order\n got %q\nwant %q", names, want)
	}
}

func TestExpandEmptyDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "readme.md"), []byte("x"), 0o644)
	if _, err := Expand([]string{dir}); err == nil || !strings.Contains(err.Error(), "no audit log files") {
		t.Fatalf("err = %v", err)
	}
}

func TestIsAuditFile(t *testing.T) {
	for name, want := range map[string]bool{
		"audit.log": true, "audit.log.gz": true, "audit.log.3": true, "audit.log.3.gz": true,
		"audit-2025-11-20T10-15-32.123.log.gz": true, "trace.json": true,
		"audit.txt": false, ".audit.log": false, "audit.log.bak": false, "audit": false,
	} {
		if got := IsAuditFile(name); got != want {
			t.Errorf("IsAuditFile(%q) = %v", name, got)
		}
	}
}
