// Package auditlog reads kube-apiserver audit log files as a stream of audit JSON
// texts: plain or gzip-compressed files, standard input, and directories of rotated
// logs read oldest first. Lines may be of any length up to a sanity bound; files that
// hold whole JSON documents (an EventList, a JSON array, pretty-printed events) are
// detected and split into their values. Nothing is skipped silently: every line that
// cannot be read is counted with its file, line number and the reason.
package auditlog

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Input is one file to read, in the order Expand returns them.
type Input struct {
	// Path is the file's path, or "-" for standard input.
	Path string
	// Size is the file's size in bytes on disk (compressed for .gz), -1 when unknown.
	Size int64
}

// Stdin is the path that names standard input.
const Stdin = "-"

// Expand turns the paths given on the command line into the files to read: a file
// stays itself, "-" is standard input, and a directory gives the audit log files found
// under it (see IsAuditFile), each directory's files in time order (rotated files
// oldest first, then the live file). A path that does not exist is an error.
func Expand(paths []string) ([]Input, error) {
	var out []Input
	for _, p := range paths {
		if p == Stdin {
			out = append(out, Input{Path: Stdin, Size: -1})
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("audit log %s: %w", p, err)
		}
		if !st.IsDir() {
			out = append(out, Input{Path: p, Size: st.Size()})
			continue
		}
		found, err := walkDir(p)
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("audit log directory %s: no audit log files in it (names like audit.log, audit.log.1, audit-2025-11-20T10-15-32.123.log, optionally .gz)", p)
		}
		out = append(out, found...)
	}
	return out, nil
}

// walkDir lists the audit files under dir, each directory's files in time order.
func walkDir(dir string) ([]Input, error) {
	byDir := map[string][]rotated{}
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading audit log directory: %w", err)
		}
		name := d.Name()
		if d.IsDir() {
			if path != dir && strings.HasPrefix(name, ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !IsAuditFile(name) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("reading audit log directory: %w", err)
		}
		parent := filepath.Dir(path)
		if _, ok := byDir[parent]; !ok {
			dirs = append(dirs, parent)
		}
		byDir[parent] = append(byDir[parent], classify(path, info.Size()))
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(dirs)
	var out []Input
	for _, d := range dirs {
		files := byDir[d]
		sort.SliceStable(files, func(i, j int) bool { return files[i].less(files[j]) })
		for _, f := range files {
			out = append(out, Input{Path: f.path, Size: f.size})
		}
	}
	return out, nil
}

// lumberjack (kube-apiserver's --audit-log-maxbackup rotation) names backups
// <name>-<2006-01-02T15-04-05.000><ext>, e.g. audit-2025-11-20T10-15-32.123.log.
var lumberjackName = regexp.MustCompile(`^(.*)-(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d{3})?)(\.[^.]+)$`)

// logrotate-style backups: audit.log.1 (newest backup) ... audit.log.N (oldest).
var numberedName = regexp.MustCompile(`^(.*)\.(\d+)$`)

// IsAuditFile reports whether a file name found in a directory is read as an audit
// log: *.log and *.json, their rotated forms (audit.log.1, audit-<time>.log), each
// optionally .gz. Hidden files are not.
func IsAuditFile(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	name = strings.TrimSuffix(name, ".gz")
	if m := numberedName.FindStringSubmatch(name); m != nil {
		name = m[1]
	}
	return strings.HasSuffix(name, ".log") || strings.HasSuffix(name, ".json")
}

// rotated is a file with what its name says of its place in a rotation.
type rotated struct {
	path string
	size int64
	// base is the live file's name this file belongs to (audit.log for
	// audit-2025-...log.gz and audit.log.3).
	base string
	// kind orders the three families: lumberjack backups (by time), numbered
	// backups (highest number, oldest, first), then the live file.
	kind int
	when time.Time
	num  int
}

const (
	kindTimestamped = iota
	kindNumbered
	kindLive
)

func classify(path string, size int64) rotated {
	name := strings.TrimSuffix(filepath.Base(path), ".gz")
	r := rotated{path: path, size: size, base: name, kind: kindLive}
	if m := lumberjackName.FindStringSubmatch(name); m != nil {
		if t, err := time.Parse("2006-01-02T15-04-05.000", m[2]); err == nil {
			return rotated{path: path, size: size, base: m[1] + m[3], kind: kindTimestamped, when: t}
		}
		if t, err := time.Parse("2006-01-02T15-04-05", m[2]); err == nil {
			return rotated{path: path, size: size, base: m[1] + m[3], kind: kindTimestamped, when: t}
		}
	}
	if m := numberedName.FindStringSubmatch(name); m != nil {
		if n, err := strconv.Atoi(m[2]); err == nil {
			return rotated{path: path, size: size, base: m[1], kind: kindNumbered, num: n}
		}
	}
	return r
}

// less orders files of one directory: by base name, then oldest first.
func (a rotated) less(b rotated) bool {
	if a.base != b.base {
		return a.base < b.base
	}
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	switch a.kind {
	case kindTimestamped:
		if !a.when.Equal(b.when) {
			return a.when.Before(b.when)
		}
	case kindNumbered:
		if a.num != b.num {
			return a.num > b.num
		}
	}
	return a.path < b.path
}
