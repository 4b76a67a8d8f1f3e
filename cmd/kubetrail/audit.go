package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/kubetrail/kubetrail/cmd/kubetrail/internal/auditlog"
	"github.com/kubetrail/kubetrail/cmd/kubetrail/internal/auditquery"
	"github.com/kubetrail/kubetrail/cmd/kubetrail/internal/auditreport"
	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/enrich"
)

const auditHelp = `Usage: kubetrail audit -f FILE|DIR ... [filters] [-o FORMAT] [FILE|DIR ...]

Reads kube-apiserver audit logs and prints the requests that pass the filters.

Input (-f, repeated or comma-separated, or as arguments; "-" is stdin):
  plain or gzip files (recognised by content), directories (their *.log, *.json,
  audit.log.N and kube-apiserver's audit-<time>.log backups, optionally .gz, found
  recursively; rotated files oldest first, then the live file), one event per line
  (lines of any length up to --max-line), or whole JSON documents: an EventList, a
  JSON array of events, pretty-printed events. Lines that are not audit events are
  counted and reported on stderr with file:line, never skipped silently.

Filters (each takes comma-separated values and may be repeated; a value matches
exactly, "*" matches any run of characters, a "-" prefix excludes; a request passes
a flag when it matches one of its values (or there are only exclusions) and none of
its exclusions, and passes when it passes every flag; a field the event does not
carry matches no value, so "*" means "is set" and "-*" "is not set"):
  --verb V            get, list, watch, create, update, patch, delete, ... (any case)
  --user U            user.username, e.g. system:serviceaccount:kube-system:*
  --group G           one of user.groups, e.g. system:nodes
  -n, --namespace NS  objectRef.namespace; "-*" for cluster-scoped requests
  --resource R        resource[.group][/subresource], as kubectl-dev_tool reads it:
                      "pods" (core group), "deployments.*" (any group), "*.apps",
                      "deployments.apps", "pods/exec", "*.*/status", "-leases.*"
  --subresource S     objectRef.subresource; "-*" for none
  --name N            objectRef.name
  --code C            responseStatus.code: 403, 4xx (or 4*), -200
                      (alias --http-status-code)
  --failed            failed requests only: 4xx, 5xx, Panic, or forbidden
                      (alias --failed-only)
  -s, --stage S       RequestReceived, ResponseStarted, ResponseComplete, Panic, or
                      "all"; default: every request once, at its last stage
                      (RequestReceived left out, ResponseStarted too but for a failed
                      authentication: the apiserver logs a 401 only at ResponseStarted,
                      a long-running request at ResponseComplete too)
  --after T           requestReceivedTimestamp >= T
  --before T          requestReceivedTimestamp < T; T is RFC 3339
                      (2025-11-20T10:15:00Z), a UTC time without zone, a date
                      (2025-11-20), or a duration before now (90m, 2h, 3d)
  --user-type T       serviceaccount, node, system, anonymous, user, unauthenticated
  --long-running[=false]  only long-running requests (watch, exec, attach,
                      port-forward, proxy, followed logs), or only the others
  --slower-than D     requests that took at least D (500ms, 2s)
  --audit-id ID       auditID (alias --uid)
  --user-agent UA     userAgent, e.g. "kubectl/*"
  --source-ip IP      the client address (sourceIPs[0])

Output (-o, --output):
  line   (default) time, verb, duration, code, URI, user; after a header line with
         the number of records and the time range they cover
  wide   line plus auditID, source IP and user agent
  json   one enriched record per line, exactly the fields the k8s_audit filter emits
         (filter defaults: redaction on, 64k objects, no managedFields); no header
  top    requests per key: --by user|group|verb|resource|namespace|code|useragent|
         source-ip (default user), --limit N rows (default 20, 0 for all); "top=N"
         is read as --limit N
  stats  duration p50/p90/p99/max per verb and resource
  html   a self-contained HTML report with charts; to --output-file or stdout

Other flags:
  --output-file F     write the output to F instead of stdout
  --progress          show progress on stderr (default: when stderr is a terminal)
  --max-line SIZE     longest line or JSON value read (default 256m); longer ones
                      are reported and skipped
  --max-errors N      unreadable lines printed on stderr (default 20; all are counted)

Exit status:
  0  every file read to its end, every line an audit event
  1  error: a file could not be opened or read to its end (a truncated gzip file:
     what came before the damage is used), the output could not be written
  2  usage: bad flag or value
  3  every file read, but some lines (or batch items) were not audit events or were
     too long: they are counted on stderr

Examples:
  kubetrail audit -f /var/log/kubernetes/audit/ --failed -o top --by user
  kubetrail audit -f audit.log --verb create --resource '*.*' --resource -subjectaccessreviews.*,-tokenreviews.*
  kubetrail audit -f must-gather/audit_logs/ --user system:serviceaccount:kube-system:generic-garbage-collector --resource deployments.*
  kubetrail audit -f audit.log.gz --verb list --resource pods -o stats
  kubetrail audit -f audit.log -o html --output-file report.html
`

// listFlag collects the values of a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// triFlag is --long-running: unset, true (the bare flag) or false.
type triFlag string

func (t *triFlag) String() string     { return string(*t) }
func (t *triFlag) Set(v string) error { *t = triFlag(v); return nil }
func (t *triFlag) IsBoolFlag() bool   { return true }

type auditOptions struct {
	files      listFlag
	spec       auditquery.Spec
	output     string
	by         string
	limit      int
	outputFile string
	progress   bool
	maxLine    string
	maxErrors  int
}

func parseAuditFlags(args []string) (*auditOptions, error) {
	o := &auditOptions{}
	fs := flag.NewFlagSet("kubetrail audit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	s := &o.spec
	var verbs, users, groups, namespaces, resources, subresources, names, codes, stages,
		userTypes, auditIDs, userAgents, sourceIPs listFlag
	var longRunning triFlag
	for _, f := range []struct {
		v     *listFlag
		names []string
	}{
		{&o.files, []string{"f", "filename"}},
		{&verbs, []string{"verb"}},
		{&users, []string{"user"}},
		{&groups, []string{"group"}},
		{&namespaces, []string{"n", "namespace"}},
		{&resources, []string{"resource"}},
		{&subresources, []string{"subresource"}},
		{&names, []string{"name"}},
		{&codes, []string{"code", "http-status-code"}},
		{&stages, []string{"s", "stage"}},
		{&userTypes, []string{"user-type"}},
		{&auditIDs, []string{"audit-id", "uid"}},
		{&userAgents, []string{"user-agent"}},
		{&sourceIPs, []string{"source-ip"}},
	} {
		for _, n := range f.names {
			fs.Var(f.v, n, "")
		}
	}
	fs.Var(&longRunning, "long-running", "")
	fs.BoolVar(&s.Failed, "failed", false, "")
	fs.BoolVar(&s.Failed, "failed-only", false, "")
	fs.StringVar(&s.After, "after", "", "")
	fs.StringVar(&s.Before, "before", "", "")
	fs.StringVar(&s.SlowerThan, "slower-than", "", "")
	fs.StringVar(&o.output, "o", "line", "")
	fs.StringVar(&o.output, "output", "line", "")
	fs.StringVar(&o.by, "by", "user", "")
	fs.IntVar(&o.limit, "limit", 20, "")
	fs.StringVar(&o.outputFile, "output-file", "", "")
	fs.BoolVar(&o.progress, "progress", false, "")
	fs.StringVar(&o.maxLine, "max-line", "256m", "")
	fs.IntVar(&o.maxErrors, "max-errors", 20, "")

	// The flag package stops at the first argument that is not a flag; files may be
	// given between flags, so parse the rest again after each.
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		o.files = append(o.files, args[0])
		args = args[1:]
	}
	s.Verbs, s.Users, s.Groups, s.Namespaces = verbs, users, groups, namespaces
	s.Resources, s.Subresources, s.Names, s.Codes = resources, subresources, names, codes
	s.UserTypes, s.AuditIDs, s.UserAgents, s.SourceIP = userTypes, auditIDs, userAgents, sourceIPs
	s.LongRunning = string(longRunning)
	s.Stages = stages
	switch {
	case len(stages) == 0:
		s.FinalStage = true
	case len(stages) == 1 && strings.EqualFold(stages[0], "all"):
		s.Stages = nil
	}
	if n, ok := strings.CutPrefix(o.output, "top="); ok {
		limit, err := strconv.Atoi(n)
		if err != nil || limit < 0 {
			return nil, fmt.Errorf("-o %s: want top=N with N >= 0", o.output)
		}
		o.output, o.limit = "top", limit
	}
	switch o.output {
	case "line", "wide", "json", "top", "stats", "html":
	default:
		return nil, fmt.Errorf("-o %q: want line, wide, json, top, stats or html", o.output)
	}
	if !slices.Contains(auditreport.TopKeys, o.by) {
		return nil, fmt.Errorf("--by %q: want one of %s", o.by, strings.Join(auditreport.TopKeys, ", "))
	}
	if o.limit < 0 {
		return nil, fmt.Errorf("--limit %d: want 0 (all) or more", o.limit)
	}
	if len(o.files) == 0 {
		return nil, errors.New("no input: give audit log files or directories with -f (or - for stdin)")
	}
	return o, nil
}

// splitFiles splits -f values at commas, as kubectl-dev_tool does, unless the value
// names an existing file as it is.
func splitFiles(values []string) []string {
	var out []string
	for _, v := range values {
		if _, err := os.Stat(v); err == nil || !strings.Contains(v, ",") {
			out = append(out, v)
			continue
		}
		out = append(out, auditquery.SplitValues([]string{v})...)
	}
	return out
}

func runAudit(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprint(stdout, auditHelp)
			return exitOK
		}
	}
	usageErr := func(err error) int {
		fmt.Fprintf(stderr, "kubetrail audit: %v\n(kubetrail audit --help for usage)\n", err)
		return exitUsage
	}
	o, err := parseAuditFlags(args)
	if err != nil {
		return usageErr(err)
	}
	filter, err := auditquery.New(o.spec)
	if err != nil {
		return usageErr(err)
	}
	maxLine, err := conf.ParseSize(o.maxLine)
	if err != nil || maxLine <= 0 {
		return usageErr(fmt.Errorf("--max-line %q: want a size such as 256m", o.maxLine))
	}
	// The filter's defaults, so that -o json writes what the k8s_audit filter emits.
	cfg, err := conf.ParseAudit(conf.MapGetter{})
	if err != nil {
		fmt.Fprintf(stderr, "kubetrail audit: %v\n", err)
		return exitError
	}
	// The filters read every record's Summary. Only -o json writes the records; the
	// other outputs read nothing else, and skipping the encoding saves about a quarter
	// of the time.
	cfg.Enrich.Summary = true
	cfg.Enrich.SummaryOnly = o.output != "json"
	enr, err := enrich.New(cfg.Enrich)
	if err != nil {
		fmt.Fprintf(stderr, "kubetrail audit: %v\n", err)
		return exitError
	}
	files := splitFiles(o.files)
	inputs, err := auditlog.Expand(files)
	if err != nil {
		fmt.Fprintf(stderr, "kubetrail audit: %v\n", err)
		return exitError
	}

	out := stdout
	if o.outputFile != "" {
		f, err := os.Create(o.outputFile)
		if err != nil {
			fmt.Fprintf(stderr, "kubetrail audit: %v\n", err)
			return exitError
		}
		defer f.Close()
		out = f
	}
	sink, err := newSink(o, files, out)
	if err != nil {
		fmt.Fprintf(stderr, "kubetrail audit: %v\n", err)
		return exitError
	}
	defer sink.Close()

	reader := auditlog.NewReader(inputs, auditlog.Options{MaxValue: maxLine, MaxIssues: max(o.maxErrors, 0), Stdin: stdin})
	defer reader.Close()
	var stopProgress func()
	if o.progress || isTerminal(stderr) {
		stopProgress = startProgress(stderr, reader)
	}
	st, err := process(reader, enr.NewWorker(), filter, sink)
	if stopProgress != nil {
		stopProgress()
	}
	if err == nil {
		err = sink.Finish(out)
	}
	if err == nil && o.outputFile != "" {
		err = out.(*os.File).Close()
	}
	code := report(stderr, reader, st, len(inputs))
	if err != nil {
		fmt.Fprintf(stderr, "kubetrail audit: %v\n", err)
		return exitError
	}
	return code
}

type processStats struct {
	records, matched int64
}

// process runs every text of the reader through the enricher and the filter, and
// hands the records that pass to the sink.
func process(r *auditlog.Reader, w *enrich.Worker, f *auditquery.Query, sink sink) (processStats, error) {
	var st processStats
	var groups [][]byte
	for r.Next() {
		res := w.Text(r.Text())
		if res.Err != nil {
			r.Skip(res.Err.Error())
			continue
		}
		for i := range res.Records {
			rec := &res.Records[i]
			if rec.Err != nil {
				r.Skip(fmt.Sprintf("item %d of the batch is not an audit event: %v", i+1, rec.Err))
				continue
			}
			st.records++
			var ok bool
			if ok, groups = f.Match(&rec.Summary, groups); !ok {
				continue
			}
			st.matched++
			if err := sink.Add(rec); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

// report prints the unreadable lines and files on stderr, then one line that always
// gives the totals, and returns the exit status.
func report(stderr io.Writer, r *auditlog.Reader, st processStats, files int) int {
	for _, is := range r.Issues() {
		fmt.Fprintf(stderr, "kubetrail audit: %s\n", is)
	}
	for _, fe := range r.FileErrors() {
		fmt.Fprintf(stderr, "kubetrail audit: file not read to its end: %s\n", fe)
	}
	n := r.IssueCount()
	shown := ""
	if int64(len(r.Issues())) < n {
		shown = fmt.Sprintf(" (first %d shown, --max-errors to change)", len(r.Issues()))
	}
	fmt.Fprintf(stderr, "kubetrail audit: %d files (%.1f MB), %d audit records, %d matched; %d unreadable lines or items in total%s; %d files not read to their end\n",
		files, float64(r.BytesRead())/1e6, st.records, st.matched, n, shown, len(r.FileErrors()))
	switch {
	case len(r.FileErrors()) > 0:
		return exitError
	case n > 0:
		return exitUnreadable
	}
	return exitOK
}
