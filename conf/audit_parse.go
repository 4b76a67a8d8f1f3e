package conf

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kubetrail/kubetrail/enrich"
)

// Property describes one plugin property, for docs and tests.
type Property struct {
	// Name is the snake_case property name.
	Name string
	// Default is the value used when the property is unset, as a user would write it.
	Default string
	// Help says in one line what the property does.
	Help string
}

// AuditProperties lists every property ParseAudit reads, in the order Effective
// reports them.
var AuditProperties = []Property{
	{"key", "log", "record field holding the audit event as JSON text"},
	{"reserve_data", "on", "keep the input record's other fields"},
	{"preserve_key", "off", "keep the raw JSON field as well"},
	{"add_parse_error", "off", "add a parse_error field to records passed through as not audit events"},
	{"derived_key", "", `nest the derived fields under this key ("" = top level)`},
	{"time_source", "request_received", "record timestamp: request_received, stage or keep"},
	{"redact", "on", "built-in redactions (Secret data, TokenRequest/TokenReview tokens)"},
	{"redact_exec_command", "off", "hide the command= parameters of exec/attach URIs"},
	{"redact_paths", "", "comma-separated dotted paths to redact, e.g. requestObject.spec.password, responseObject.data.*"},
	{"max_object_size", "64k", "largest requestObject/responseObject kept (bytes, k/m/g suffixes; 0 or off = no limit)"},
	{"drop_managed_fields", "on", "remove metadata.managedFields from request/response objects"},
	{"keep", "", "keep only the events matching these rules (see the rule syntax)"},
	{"drop", "", "drop the events matching these rules (applied after keep)"},
	{"dedup", "off", "emit each audit event once: drop a record whose (auditID, stage, stageTimestamp) was already emitted"},
	{"dedup_file", "", "file keeping the dedup state across restarts (empty: in memory only, a restart forgets it)"},
	{"dedup_max_entries", "1000000", "events dedup remembers, the oldest forgotten first (24 bytes each: 24 MiB for 1000000)"},
	{"metrics", "off", "add the fields log_to_metrics counts: metrics (once per request) and user_top (see metrics.md)"},
	{"metrics_top_users", "20", "with metrics on: the most users user_top names, the rest being other (0: no user_top)"},
}

// MaxTopUsers bounds metrics_top_users: each name is a label value, and the series
// multiply with the other labels.
const MaxTopUsers = 1000

// MaxDedupEntries bounds dedup_max_entries (about 2.4 GiB of memory).
const MaxDedupEntries = 100_000_000

// auditPlugin prefixes every error of ParseAudit.
const auditPlugin = "k8s_audit"

// auditValue returns the trimmed value of a k8s_audit property, or its default when
// it is unset ("").
func auditValue(g Getter, name string) string { return propValue(g, AuditProperties, name) }

// ParseAudit reads the k8s_audit properties through g, applies defaults and validates.
func ParseAudit(g Getter) (Audit, error) {
	var a Audit
	var err error
	fail := func(name string, e error) (Audit, error) { return Audit{}, propError(auditPlugin, name, e) }

	if a.Key = auditValue(g, "key"); a.Key == "" {
		return fail("key", errors.New("must not be empty"))
	}
	bools := []struct {
		name string
		dst  *bool
	}{
		{"reserve_data", &a.ReserveData},
		{"preserve_key", &a.PreserveKey},
		{"add_parse_error", &a.AddParseError},
		{"redact", &a.Enrich.Redact},
		{"redact_exec_command", &a.Enrich.RedactExecCommand},
		{"drop_managed_fields", &a.Enrich.DropManagedFields},
		{"dedup", &a.Dedup},
		{"metrics", &a.Enrich.Metrics},
	}
	for _, b := range bools {
		if *b.dst, err = ParseBool(auditValue(g, b.name)); err != nil {
			return fail(b.name, err)
		}
	}

	a.Enrich.DerivedKey = auditValue(g, "derived_key")
	if strings.ContainsAny(a.Enrich.DerivedKey, ". \t\r\n") {
		return fail("derived_key", fmt.Errorf("invalid key %q: must be one field name, without '.' or spaces", a.Enrich.DerivedKey))
	}
	if a.Enrich.TimeSource, err = parseAuditTimeSource(auditValue(g, "time_source")); err != nil {
		return fail("time_source", err)
	}
	if a.Enrich.RedactPaths, err = parseRedactPaths(auditValue(g, "redact_paths")); err != nil {
		return fail("redact_paths", err)
	}
	v := auditValue(g, "max_object_size")
	if a.Enrich.MaxObjectSize, err = ParseSize(v); err != nil {
		return fail("max_object_size", fmt.Errorf("invalid size %q: %w", v, err))
	}
	if a.Enrich.Keep, err = enrich.ParseRules(auditValue(g, "keep")); err != nil {
		return fail("keep", err)
	}
	if a.Enrich.Drop, err = enrich.ParseRules(auditValue(g, "drop")); err != nil {
		return fail("drop", err)
	}
	a.DedupFile = auditValue(g, "dedup_file")
	if a.DedupFile != "" && !a.Dedup {
		return fail("dedup_file", errors.New("set, but dedup is off: add dedup on"))
	}
	v = auditValue(g, "dedup_max_entries")
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxDedupEntries {
		return fail("dedup_max_entries", fmt.Errorf("invalid number %q: want an integer from 1 to %d", v, MaxDedupEntries))
	}
	a.DedupMaxEntries = n
	v = auditValue(g, "metrics_top_users")
	if a.Enrich.TopUsers, err = strconv.Atoi(v); err != nil || a.Enrich.TopUsers < 0 || a.Enrich.TopUsers > MaxTopUsers {
		return fail("metrics_top_users", fmt.Errorf("invalid number %q: want an integer from 0 to %d", v, MaxTopUsers))
	}
	return a, nil
}

// Effective returns the settings as "name=value" pairs in a stable order (that of
// AuditProperties), for the start-up log line. Values are written as a user would
// write them; empty values and values with spaces or quotes are quoted.
func (a Audit) Effective() []string {
	out := make([]string, 0, len(AuditProperties))
	for _, p := range AuditProperties {
		var v string
		switch p.Name {
		case "key":
			v = a.Key
		case "reserve_data":
			v = FormatBool(a.ReserveData)
		case "preserve_key":
			v = FormatBool(a.PreserveKey)
		case "add_parse_error":
			v = FormatBool(a.AddParseError)
		case "derived_key":
			v = a.Enrich.DerivedKey
		case "time_source":
			v = formatAuditTimeSource(a.Enrich.TimeSource)
		case "redact":
			v = FormatBool(a.Enrich.Redact)
		case "redact_exec_command":
			v = FormatBool(a.Enrich.RedactExecCommand)
		case "redact_paths":
			v = strings.Join(a.Enrich.RedactPaths, ",")
		case "max_object_size":
			v = FormatSize(a.Enrich.MaxObjectSize)
		case "drop_managed_fields":
			v = FormatBool(a.Enrich.DropManagedFields)
		case "keep":
			v = a.Enrich.Keep.String()
		case "drop":
			v = a.Enrich.Drop.String()
		case "dedup":
			v = FormatBool(a.Dedup)
		case "dedup_file":
			v = a.DedupFile
		case "dedup_max_entries":
			v = strconv.Itoa(a.DedupMaxEntries)
		case "metrics":
			v = FormatBool(a.Enrich.Metrics)
		case "metrics_top_users":
			v = strconv.Itoa(a.Enrich.TopUsers)
		default:
			panic("conf: Effective misses property " + p.Name)
		}
		out = append(out, p.Name+"="+quote(v))
	}
	return out
}

// ParseBool reads a boolean as Fluent Bit's flb_utils_bool does: on/off, true/false,
// yes/no, and also 1/0, case-insensitively.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "on", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q: want on/off, true/false, yes/no or 1/0", s)
}

// FormatBool writes a boolean as Fluent Bit users do: on or off.
func FormatBool(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

var auditTimeSources = []struct {
	name string
	ts   enrich.TimeSource
}{
	{"request_received", enrich.TimeRequestReceived},
	{"stage", enrich.TimeStage},
	{"keep", enrich.TimeKeep},
}

func parseAuditTimeSource(s string) (enrich.TimeSource, error) {
	for _, t := range auditTimeSources {
		if strings.EqualFold(s, t.name) {
			return t.ts, nil
		}
	}
	return 0, fmt.Errorf("invalid time source %q: want request_received, stage or keep", s)
}

func formatAuditTimeSource(ts enrich.TimeSource) string {
	for _, t := range auditTimeSources {
		if t.ts == ts {
			return t.name
		}
	}
	return strconv.Itoa(int(ts))
}

// redactRoots are the first elements a redact path may start with. Annotations are
// not among them: their keys contain dots, so a dotted path cannot name one.
var redactRoots = []string{"requestObject", "responseObject"}

func parseRedactPaths(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var paths []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("empty path in %q", s)
		}
		if strings.ContainsAny(p, " \t\r\n") {
			return nil, fmt.Errorf("path %q: spaces are not allowed (separate paths with ',')", p)
		}
		elems := strings.Split(p, ".")
		for _, e := range elems {
			if e == "" {
				return nil, fmt.Errorf("path %q: empty element", p)
			}
		}
		ok := false
		for _, r := range redactRoots {
			ok = ok || elems[0] == r
		}
		if !ok {
			return nil, fmt.Errorf("path %q: must start with %s", p, strings.Join(redactRoots, ", "))
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// Size units, 1024-based as in Fluent Bit's flb_utils_size_to_bytes.
var flbSizeUnits = []struct {
	suffix string // lower case; a trailing "b" is also accepted
	mult   int64
}{
	{"k", 1 << 10},
	{"m", 1 << 20},
	{"g", 1 << 30},
}

// ParseSize reads a size in bytes as Fluent Bit writes it: digits with an optional
// unit k, kb, m, mb, g or gb (any case, 1024-based). "0", "off" and "false" mean no
// limit and give 0.
func ParseSize(s string) (int, error) {
	switch strings.ToLower(s) {
	case "off", "false":
		return 0, nil
	case "":
		return 0, errors.New("empty size")
	}
	if s[0] == '-' {
		return 0, errors.New("must not be negative")
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("want a number of bytes with an optional unit k, m or g, or off")
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, err
	}
	unit := strings.ToLower(s[i:])
	mult := int64(1)
	if unit != "" {
		mult = 0
		for _, u := range flbSizeUnits {
			if unit == u.suffix || unit == u.suffix+"b" {
				mult = u.mult
			}
		}
		if mult == 0 {
			return 0, fmt.Errorf("unknown unit %q: want k, kb, m, mb, g or gb", s[i:])
		}
	}
	if n > math.MaxInt/mult {
		return 0, errors.New("too large")
	}
	return int(n * mult), nil
}

// FormatSize writes a size as ParseSize reads it, with the largest exact unit; 0 is
// "off".
func FormatSize(n int) string {
	if n == 0 {
		return "off"
	}
	for i := len(flbSizeUnits) - 1; i >= 0; i-- {
		if m := flbSizeUnits[i].mult; int64(n)%m == 0 {
			return strconv.FormatInt(int64(n)/m, 10) + flbSizeUnits[i].suffix
		}
	}
	return strconv.Itoa(n)
}
