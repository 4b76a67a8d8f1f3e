package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/test/auditgen"
	"github.com/kubetrail/kubetrail/test/repo"
)

// The end-to-end tests run the real kubetrailBin, built once by TestMain.
var kubetrailBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kubetrail-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kubetrailBin = filepath.Join(dir, "kubetrail")
	if out, err := exec.Command("go", "build", "-o", kubetrailBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func kubetrail(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(kubetrailBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

var enrichFiles = []string{"../../enrich/testdata/apiserver-metadata.log", "../../enrich/testdata/metadata.log", "../../enrich/testdata/requestresponse.log"}

// ev is the test's own decoding of an audit event, with encoding/json.
type ev struct {
	AuditID, Stage, Verb, RequestURI string
	User                             struct{ Username string }
	ObjectRef                        *struct{ Resource, Namespace, APIGroup string }
	ResponseStatus                   *struct{ Code int }
	RequestReceivedTimestamp         time.Time
	Timestamp                        time.Time
}

func (e ev) code() int {
	if e.ResponseStatus == nil {
		return 0
	}
	return e.ResponseStatus.Code
}

func (e ev) received() time.Time {
	if !e.RequestReceivedTimestamp.IsZero() {
		return e.RequestReceivedTimestamp
	}
	return e.Timestamp
}

// decodeFiles reads files line by line with encoding/json: the audit events, and the
// number of non-empty lines that are not one.
func decodeFiles(t *testing.T, files ...string) (events []ev, others int) {
	t.Helper()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			var e ev
			if json.Unmarshal([]byte(line), &e) != nil || e.AuditID == "" {
				others++
				continue
			}
			events = append(events, e)
		}
	}
	return events, others
}

func corpusFiles(t *testing.T) []string {
	dir := repo.SharedAudit(t)
	logs, _ := filepath.Glob(dir + "/*.log")
	jsons, _ := filepath.Glob(dir + "/*.json")
	files := append(logs, jsons...)
	if len(files) < 5 {
		t.Fatalf("shared corpus not found at %s", dir)
	}
	return files
}

var headerRE = regexp.MustCompile(`^# (\d+) records(?: from (\S+) to (\S+) \(\S+\))?\n`)

// header checks the text output's first line against the expected events.
func checkHeader(t *testing.T, out string, want []ev) {
	t.Helper()
	m := headerRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no header line in %.200q", out)
	}
	if n, _ := strconv.Atoi(m[1]); n != len(want) {
		t.Errorf("header says %d records, want %d", n, len(want))
	}
	var first, last time.Time
	for _, e := range want {
		r := e.received()
		if first.IsZero() || r.Before(first) {
			first = r
		}
		if r.After(last) {
			last = r
		}
	}
	if len(want) > 0 && (m[2] != first.UTC().Format(time.RFC3339Nano) || m[3] != last.UTC().Format(time.RFC3339Nano)) {
		t.Errorf("header range %s..%s, want %s..%s", m[2], m[3], first.UTC().Format(time.RFC3339Nano), last.UTC().Format(time.RFC3339Nano))
	}
}

// once is the default stage selection, restated: each request at its last stage
// (a failed authentication, 401 without a user, is logged at ResponseStarted only; a
// long-running request has a ResponseComplete after it, failed or not).
func once(e ev) bool {
	return e.Stage != "RequestReceived" && (e.Stage != "ResponseStarted" || (e.code() >= 400 && e.User.Username == ""))
}

func filterEvents(events []ev, keep func(ev) bool) []ev {
	var out []ev
	for _, e := range events {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

func TestLineOutputCorpus(t *testing.T) {
	files := append(corpusFiles(t), enrichFiles...)
	events, others := decodeFiles(t, files...)
	if others != 1 {
		t.Fatalf("the corpus has %d non-event lines, the test expects the GKE LogEntry only", others)
	}
	want := filterEvents(events, once)
	var size int64
	for _, f := range files {
		st, _ := os.Stat(f)
		size += st.Size()
	}
	args := append([]string{"audit", "-f", repo.SharedAudit(t)}, enrichFiles...)
	r := kubetrail(t, nil, args...)
	if r.code != exitUnreadable {
		t.Fatalf("exit %d, want %d (the GKE LogEntry line): %s", r.code, exitUnreadable, r.stderr)
	}
	checkHeader(t, r.stdout, want)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")[1:]
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	// The lines are the events in file order (directory files sorted by name, then
	// the enrich files), each with its verb, code, URI and user.
	for i, e := range want {
		l := lines[i]
		code := "  -"
		if e.code() != 0 {
			code = fmt.Sprintf("%3d", e.code())
		}
		wantPart := fmt.Sprintf("[%6s]", strings.ToUpper(e.Verb))
		if !strings.Contains(l, wantPart) || !strings.Contains(l, "] ["+code+"] "+e.RequestURI+" ["+e.User.Username) ||
			!strings.HasPrefix(l, e.received().UTC().Format("2006-01-02T15:04:05.000Z")) {
			t.Fatalf("line %d = %q, want event %s (%s %d %s %s)", i, l, e.AuditID, e.Verb, e.code(), e.RequestURI, e.User.Username)
		}
	}
	if !strings.Contains(r.stderr, "elastic-test-audit.log:4: not an audit event") ||
		!strings.Contains(r.stderr, fmt.Sprintf("%d files (%.1f MB), %d audit records, %d matched; 1 unreadable lines or items in total; 0 files not read",
			len(files), float64(size)/1e6, len(events), len(want))) {
		t.Errorf("stderr: %s", r.stderr)
	}
}

func TestFiltersEndToEnd(t *testing.T) {
	events, _ := decodeFiles(t, enrichFiles...)
	for _, c := range []struct {
		args []string
		keep func(ev) bool
	}{
		{[]string{"--verb", "list,watch"}, func(e ev) bool { return once(e) && (e.Verb == "list" || e.Verb == "watch") }},
		{[]string{"--code", "4xx", "--verb=-get"}, func(e ev) bool { return once(e) && e.code()/100 == 4 && e.Verb != "get" }},
		{[]string{"--failed"}, func(e ev) bool { return once(e) && (e.code() >= 400 || e.Stage == "Panic") }},
		{[]string{"-n", "kube-system", "--resource", "configmaps,leases.*"}, func(e ev) bool {
			return once(e) && e.ObjectRef != nil && e.ObjectRef.Namespace == "kube-system" &&
				(e.ObjectRef.Resource == "configmaps" && e.ObjectRef.APIGroup == "" || e.ObjectRef.Resource == "leases")
		}},
		{[]string{"--stage", "all", "--user", "system:*", "--user=-system:apiserver"}, func(e ev) bool {
			return strings.HasPrefix(e.User.Username, "system:") && e.User.Username != "system:apiserver"
		}},
		{[]string{"--stage", "ResponseStarted"}, func(e ev) bool { return e.Stage == "ResponseStarted" }},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			want := filterEvents(events, c.keep)
			if len(want) == 0 || len(want) == len(events) {
				t.Fatalf("the filter keeps %d of %d events: a weak test", len(want), len(events))
			}
			r := kubetrail(t, nil, append(append([]string{"audit", "-o", "wide"}, c.args...), enrichFiles...)...)
			if r.code != exitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			checkHeader(t, r.stdout, want)
			lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")[1:]
			if len(lines) != len(want) {
				t.Fatalf("%d lines, want %d", len(lines), len(want))
			}
			for i, e := range want {
				if !strings.Contains(lines[i], " ("+e.AuditID+") ") {
					t.Fatalf("line %d = %q, want auditID %s", i, lines[i], e.AuditID)
				}
			}
		})
	}
}

// TestJSONIsTheFilterOutput compares -o json with the k8s_audit filter run by the
// test host (make builds both): the same records, byte for byte, but for the
// timestamp the host prints as "date".
func TestJSONIsTheFilterOutput(t *testing.T) {
	host, lib := repo.Artefact(t, "build/flb-testhost", "make"), repo.Artefact(t, "build/flb-filter_k8s_audit.so", "make")
	files := append(corpusFiles(t), enrichFiles...)
	var all []byte
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all = append(all, b...)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			all = append(all, '\n')
		}
	}
	// Only audit events: the filter passes other records through unchanged.
	var events bytes.Buffer
	for _, l := range strings.Split(string(all), "\n") {
		var e ev
		if json.Unmarshal([]byte(l), &e) == nil && e.AuditID != "" {
			events.WriteString(l + "\n")
		}
	}
	cmd := exec.Command(host, "filter", "-l", lib, "-")
	cmd.Stdin = bytes.NewReader(events.Bytes())
	var hostOut bytes.Buffer
	cmd.Stdout = &hostOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("flb-testhost: %v", err)
	}
	r := kubetrail(t, events.Bytes(), "audit", "-o", "json", "--stage", "all", "-")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	want := strings.Split(strings.TrimSuffix(hostOut.String(), "\n"), "\n")
	if len(got) != len(want) || len(got) < 700 {
		t.Fatalf("%d records, the filter gives %d", len(got), len(want))
	}
	dateRE := regexp.MustCompile(`^\{"date":[0-9.e+-]+,`)
	for i := range got {
		w := dateRE.ReplaceAllString(want[i], "{")
		if got[i] != w {
			t.Fatalf("record %d differs:\n got %.300s\nwant %.300s", i, got[i], w)
		}
		if !json.Valid([]byte(got[i])) {
			t.Fatalf("record %d is not JSON", i)
		}
	}
}

func TestInputs(t *testing.T) {
	events, _ := decodeFiles(t, enrichFiles[0])
	want := filterEvents(events, once)
	src, _ := os.ReadFile(enrichFiles[0])
	lines := strings.Split(strings.TrimSuffix(string(src), "\n"), "\n")
	dir := t.TempDir()

	// A rotated directory: lumberjack backups (one gzip), then the live file, with
	// CRLF line ends and empty lines in one of them.
	third := len(lines) / 3
	rot := filepath.Join(dir, "rotated")
	os.Mkdir(rot, 0o755)
	var gzb bytes.Buffer
	zw := gzip.NewWriter(&gzb)
	zw.Write([]byte(strings.Join(lines[:third], "\n") + "\n"))
	zw.Close()
	os.WriteFile(filepath.Join(rot, "audit-2026-11-23T10-00-00.000.log.gz"), gzb.Bytes(), 0o644)
	os.WriteFile(filepath.Join(rot, "audit-2026-11-23T10-30-00.000.log"), []byte(strings.Join(lines[third:2*third], "\r\n\r\n")+"\r\n"), 0o644)
	os.WriteFile(filepath.Join(rot, "audit.log"), []byte(strings.Join(lines[2*third:], "\n")), 0o644)

	// The same events as one pretty-printed EventList, and as a JSON array.
	var items []json.RawMessage
	for _, l := range lines {
		items = append(items, json.RawMessage(l))
	}
	list, _ := json.MarshalIndent(map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}, "", "  ")
	os.WriteFile(filepath.Join(dir, "list.json"), list, 0o644)
	arr, _ := json.MarshalIndent(items, "", "\t")
	os.WriteFile(filepath.Join(dir, "array.json"), arr, 0o644)

	for _, c := range []struct {
		name  string
		args  []string
		stdin []byte
	}{
		{"rotated directory", []string{rot}, nil},
		{"EventList document", []string{filepath.Join(dir, "list.json")}, nil},
		{"array document", []string{filepath.Join(dir, "array.json")}, nil},
		{"gzip on stdin", []string{"-"}, gzipped(t, src)},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := kubetrail(t, c.stdin, append([]string{"audit", "-o", "wide", "-f"}, c.args...)...)
			if r.code != exitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			checkHeader(t, r.stdout, want)
			out := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")[1:]
			if len(out) != len(want) {
				t.Fatalf("%d lines, want %d", len(out), len(want))
			}
			for i, e := range want {
				if !strings.Contains(out[i], " ("+e.AuditID+") ") {
					t.Fatalf("line %d = %q, want auditID %s (read in time order)", i, out[i], e.AuditID)
				}
			}
		})
	}
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLongLinesAndBrokenLines(t *testing.T) {
	src, _ := os.ReadFile(enrichFiles[1])
	lines := strings.Split(strings.TrimSuffix(string(src), "\n"), "\n")
	// An event with a 2 MiB annotation (lines over bufio.Scanner's 64 KiB and over
	// the 1 MiB read buffer), broken lines, and an event over --max-line.
	big := strings.Replace(lines[0], `"annotations":{`, `"annotations":{"big":"`+strings.Repeat("x", 2<<20)+`",`, 1)
	huge := strings.Replace(lines[1], `"annotations":{`, `"annotations":{"big":"`+strings.Repeat("y", 5<<20)+`",`, 1)
	if big == lines[0] || huge == lines[1] {
		t.Fatal("no annotations to grow")
	}
	batch := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + lines[3] + `,{"foo":1}]}`
	content := big + "\n" + "this is not json\n" + lines[2][:len(lines[2])/2] + "\n" + huge + "\n" + batch + "\n"
	p := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(p, []byte(content), 0o644)
	mb := float64(len(content)) / 1e6
	r := kubetrail(t, nil, "audit", "--max-line", "4m", "-o", "json", "--progress", p)
	if r.code != exitUnreadable {
		t.Fatalf("exit %d, want 3: %s", r.code, r.stderr)
	}
	out := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(out) != 2 || !strings.Contains(out[0], strings.Repeat("x", 1000)) {
		t.Fatalf("%d records (want the 2 MiB event and the last one)", len(out))
	}
	var first ev
	if err := json.Unmarshal([]byte(out[0]), &first); err != nil || first.AuditID == "" {
		t.Fatalf("first record: %v", err)
	}
	for _, want := range []string{
		p + ":2: not JSON",
		p + ":3: ",
		p + ":4: line of ",
		"longer than the limit of 4194304 bytes",
		p + ":5: item 2 of the batch is not an audit event",
		"4 unreadable lines or items in total",
		fmt.Sprintf("kubetrail audit: read %.1f MB of %.1f MB (100%%), ", mb, mb), // --progress, final line
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

func TestExitStatuses(t *testing.T) {
	dir := t.TempDir()
	full, _ := os.ReadFile(enrichFiles[0])
	gz := gzipped(t, full)
	cut := filepath.Join(dir, "cut.log.gz")
	os.WriteFile(cut, gz[:len(gz)/2], 0o644)
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"audit", "-f", enrichFiles[1]}, exitOK, "kubetrail audit: 1 files (0.0 MB), 4 audit records, 4 matched; 0 unreadable lines or items in total; 0 files not read to their end\n"},
		{[]string{"audit", "-f", "/nonexistent.log"}, exitError, "audit log /nonexistent.log: stat /nonexistent.log: no such file or directory"},
		{[]string{"audit", "-f", cut}, exitError, "file not read to its end: " + cut + ": reading after line"},
		{[]string{"audit"}, exitUsage, "no input"},
		{[]string{"audit", "-f", enrichFiles[1], "--code", "abc"}, exitUsage, `--code "abc": not a status code`},
		{[]string{"audit", "-f", enrichFiles[1], "-o", "yaml"}, exitUsage, `-o "yaml"`},
		{[]string{"audit", "-f", enrichFiles[1], "-o", "top", "--by", "colour"}, exitUsage, `--by "colour": want one of user, group`},
		{[]string{"audit", "-f", enrichFiles[1] + "," + enrichFiles[2], "--verb", "get"}, exitOK, ""},
		{[]string{"audit", "-f", enrichFiles[1], "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{[]string{"nope"}, exitUsage, `unknown command "nope"`},
	} {
		r := kubetrail(t, nil, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.stderr) {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", c.args, r.code, r.stderr, c.code, c.stderr)
		}
	}
	// The truncated gzip file: what came before the damage is listed.
	r := kubetrail(t, nil, "audit", "--stage", "all", "-f", cut)
	n, _ := strconv.Atoi(headerRE.FindStringSubmatch(r.stdout)[1])
	if n == 0 || n >= 677 {
		t.Errorf("%d records read from half a gzip file of 677", n)
	}
	if h := kubetrail(t, nil, "audit", "--help"); h.code != 0 || !strings.Contains(h.stdout, "Exit status:") {
		t.Errorf("--help: %d %q", h.code, h.stdout)
	}
}

func TestAggregateOutputs(t *testing.T) {
	events, _ := decodeFiles(t, enrichFiles...)
	want := filterEvents(events, once)
	for _, o := range []string{"top", "stats"} {
		r := kubetrail(t, nil, append([]string{"audit", "-o", o, "--by", "verb", "--limit", "0"}, enrichFiles...)...)
		if r.code != exitOK {
			t.Fatalf("-o %s: exit %d: %s", o, r.code, r.stderr)
		}
		checkHeader(t, r.stdout, want)
	}
	// top by verb: the counts of an independent tally.
	r := kubetrail(t, nil, append([]string{"audit", "-o", "top=0", "--by", "verb"}, enrichFiles...)...)
	tally := map[string]int{}
	for _, e := range want {
		tally[e.Verb]++
	}
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	rows := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || f[0] == "VERB" {
			continue
		}
		if n, _ := strconv.Atoi(f[1]); n != tally[f[0]] {
			t.Errorf("top verb %s: %s, want %d", f[0], f[1], tally[f[0]])
		}
		rows++
	}
	if rows != len(tally) {
		t.Errorf("%d rows, want %d verbs:\n%s", rows, len(tally), r.stdout)
	}
	// html to a file.
	p := filepath.Join(t.TempDir(), "report.html")
	r = kubetrail(t, nil, append([]string{"audit", "-o", "html", "--output-file", p}, enrichFiles...)...)
	b, _ := os.ReadFile(p)
	if r.code != exitOK || r.stdout != "" || !bytes.Contains(bytes.ToLower(b), []byte("<html")) {
		t.Errorf("html: exit %d, %d bytes, stdout %d bytes: %s", r.code, len(b), len(r.stdout), r.stderr)
	}
}

// TestFailedAuthenticationCounted: the apiserver logs a failed authentication (401)
// at stage ResponseStarted only. The default stage selection must keep it, so that
// `top --by code` and `--code 401` see every 401 of a generated log whose 401s are
// shaped that way, counted here with encoding/json.
func TestFailedAuthenticationCounted(t *testing.T) {
	var log bytes.Buffer
	if _, err := auditgen.Write(&log, auditgen.Options{Seed: 7, Records: 20000}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(p, log.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	events, _ := decodeFiles(t, p)
	var unauthorized, startedOnly int
	for _, e := range events {
		if e.code() == 401 {
			unauthorized++
			if e.Stage == "ResponseStarted" {
				startedOnly++
			}
		}
	}
	if unauthorized == 0 || startedOnly != unauthorized {
		t.Fatalf("generated log: %d 401s, %d at ResponseStarted: want some, all at ResponseStarted", unauthorized, startedOnly)
	}
	r := kubetrail(t, nil, "audit", "--code", "401", "-f", p)
	if got := strings.Count(r.stdout, "] [401] "); got != unauthorized {
		t.Errorf("--code 401: %d lines, want %d:\n%s", got, unauthorized, r.stderr)
	}
	r = kubetrail(t, nil, "audit", "-o", "top=0", "--by", "code", "-f", p)
	found := false
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "401" {
			found = true
			if n, _ := strconv.Atoi(f[1]); n != unauthorized {
				t.Errorf("top by code: 401 counted %d times, want %d", n, unauthorized)
			}
		}
	}
	if !found {
		t.Errorf("top by code has no 401 row:\n%s", r.stdout)
	}
}
