package testhost_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/test/fluentbit"
	"github.com/kubetrail/kubetrail/test/repo"
)

// TestFluentBitAuditCost compares, in one real Fluent Bit and one go, what a record
// costs: the same audit log (the real apiserver's Metadata-level lines of
// enrich/testdata repeated to KUBETRAIL_COST_LINES, 300,000 by default) read by `tail`
// from its head to the `null` output (Exit_On_Eof: the process ends when the file is
// read, and filters run as records are appended, so every record was processed), with
//
//	tail           no parser: the baseline
//	parser json    tail's Parser: Fluent Bit's own JSON parser (Format json alone)
//	parser json, time  the same taking the record time from requestReceivedTimestamp,
//	               as k8s_audit does by default (Time_Key, Time_Format, Time_Keep)
//	k8s_audit      tail -> k8s_audit (defaults)
//	parser + lua   Parser json, then a Lua filter deriving five of k8s_audit's fields
//	               (duration_ms, outcome, user_type, sa_namespace, sa_name)
//
// The pipelines run round-robin, KUBETRAIL_COST_ROUNDS times (3), so that a slower
// stretch of the shared machine falls on all of them; the process CPU time (user +
// system, from wait4) over the baseline's, per record, is the figure, median of the
// rounds. It asserts only that every run ended well and that k8s_audit and Lua wrote
// their fields (a run that did nothing would look cheap); the ratios are printed for
// docs/performance.md. make bench-fluentbit runs it; skipped otherwise.
func TestFluentBitAuditCost(t *testing.T) {
	if os.Getenv("KUBETRAIL_BENCH_FLUENTBIT") == "" {
		t.Skip("a long measurement: set KUBETRAIL_BENCH_FLUENTBIT=1 and FLUENT_BIT (make bench-fluentbit)")
	}
	fb := fluentbit.Require(t, "compare k8s_audit with Fluent Bit's own parser")
	pluginsConf := repo.Artefact(t, "build/plugins.conf", "make")
	lines := envInt(t, "KUBETRAIL_COST_LINES", 300000)
	rounds := envInt(t, "KUBETRAIL_COST_ROUNDS", 3)

	dir := t.TempDir()
	corpus := readLines(t, repo.Path(t, "enrich/testdata/apiserver-metadata.log"))
	log := filepath.Join(dir, "audit.log")
	var b strings.Builder
	for i := 0; i < lines; i++ {
		b.WriteString(corpus[i%len(corpus)])
		b.WriteByte('\n')
	}
	if err := os.WriteFile(log, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	size := b.Len()
	b.Reset()
	if err := os.WriteFile(filepath.Join(dir, "parsers.conf"), []byte(costParsers), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "derive.lua"), []byte(costLua), 0o644); err != nil {
		t.Fatal(err)
	}

	type pipeline struct{ name, input, filter string }
	pipelines := []pipeline{
		{"tail", "", ""},
		{"parser json", "    Parser json\n", ""},
		{"k8s_audit", "", "[FILTER]\n    Name  k8s_audit\n    Match *\n"},
		{"parser json, time", "    Parser json_time\n", ""},
		{"parser + lua", "    Parser json\n", "[FILTER]\n    Name   lua\n    Match  *\n    script derive.lua\n    call   derive\n"},
		// audit-metrics.conf's metrics pipeline: metrics on, its log_to_metrics filters
		// and a prometheus_exporter (the null output takes the records).
		{"+ metrics", "", "[FILTER]\n    Name  k8s_audit\n    Match audit\n    Metrics on\n" + metricsFilters(t, "audit") +
			fmt.Sprintf("[OUTPUT]\n    Name prometheus_exporter\n    Match metrics.*\n    Port %d\n", freeTCPPort(t))},
	}
	cpu := make([][]time.Duration, len(pipelines))
	for r := 0; r < rounds; r++ {
		for i, p := range pipelines {
			cfg := filepath.Join(dir, fmt.Sprintf("p%d.conf", i))
			writeCostConfig(t, cfg, pluginsConf, log, "    Buffer_Chunk_Size 256k\n    Buffer_Max_Size   16m\n"+p.input, p.filter, "    Name  null\n    Match *\n")
			cpu[i] = append(cpu[i], runForCPU(t, fb, dir, cfg))
		}
		// A check that the filters did their work, once, on a small file: the
		// same configuration with a stdout output.
		if r == 0 {
			checkCostPipelines(t, fb, dir, pluginsConf, corpus[:20])
		}
	}
	med := func(i int) time.Duration {
		c := slices.Clone(cpu[i])
		slices.Sort(c)
		return c[len(c)/2]
	}
	per := func(i int) float64 { return float64(med(i)-med(0)) / float64(time.Microsecond) / float64(lines) }
	t.Logf("Fluent Bit %s, %d lines (%d MB, %d B average), %d rounds, process CPU (user+sys), median:", fluentBitVersion(fb), lines, size>>20, size/lines, rounds)
	for i, p := range pipelines {
		var all []string
		for _, c := range cpu[i] {
			all = append(all, c.Round(10*time.Millisecond).String())
		}
		over := ""
		if i > 0 {
			over = fmt.Sprintf("  %.2f µs/record over tail", per(i))
		}
		t.Logf("  %-13s %8v  (%s)%s", p.name, med(i).Round(10*time.Millisecond), strings.Join(all, " "), over)
	}
	t.Logf("k8s_audit / parser json = %.2f (goal <= 1.0), / parser json with time = %.2f; (parser + lua) / k8s_audit = %.2f (goal >= 4)",
		per(2)/per(1), per(2)/per(3), per(4)/per(2))
	t.Logf("the whole pipeline with k8s_audit: %.0f records per CPU-second", float64(lines)/med(2).Seconds())
	t.Logf("metrics (audit-metrics.conf's log_to_metrics and exporter): %.2f µs/record over k8s_audit alone", per(5)-per(2))
}

// writeCostConfig writes a classic configuration: tail of path from its head until
// its end (then Fluent Bit exits), the tail lines input, the filter stanza, the output
// stanza's lines.
func writeCostConfig(t *testing.T, cfg, pluginsConf, path, input, filter, output string) {
	t.Helper()
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`[SERVICE]
    Flush        1
    Grace        1
    Log_Level    warn
    Plugins_File %s
    Parsers_File parsers.conf

[INPUT]
    Name              tail
    Path              %s
    Read_from_Head    on
    Exit_On_Eof       on
    Tag               audit
%s
%s
[OUTPUT]
%s`, pluginsConf, path, input, filter, output)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
}

// runForCPU runs Fluent Bit until it exits (Exit_On_Eof) and returns its CPU time.
func runForCPU(t *testing.T, fb, dir, cfg string) time.Duration {
	t.Helper()
	cmd := exec.Command(fb, "-c", cfg)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cfg, err, lastLines(string(out), 20))
	}
	if strings.Contains(string(out), "[error]") {
		t.Fatalf("%s logged an error:\n%s", cfg, lastLines(string(out), 20))
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// checkCostPipelines runs the k8s_audit and Lua pipelines over a few lines to stdout
// and requires their fields in every record.
func checkCostPipelines(t *testing.T, fb, dir, pluginsConf string, lines []string) {
	t.Helper()
	small := filepath.Join(dir, "small.log")
	if err := os.WriteFile(small, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ input, filter, field string }{
		{"", "[FILTER]\n    Name  k8s_audit\n    Match *\n", "duration_ms"},
		{"    Parser json\n", "[FILTER]\n    Name   lua\n    Match  *\n    script derive.lua\n    call   derive\n", "duration_ms"},
		{"    Parser json\n", "[FILTER]\n    Name   lua\n    Match  *\n    script derive.lua\n    call   derive\n", "user_type"},
	} {
		cfg := filepath.Join(dir, "check.conf")
		writeCostConfig(t, cfg, pluginsConf, small, c.input, c.filter, "    Name   stdout\n    Match  *\n    Format json_lines\n")
		run := runFluentBit(t, dir, cfg, len(lines))
		recs := run.records(t)
		if len(recs) != len(lines) {
			t.Fatalf("%s: %d records of %d", c.filter, len(recs), len(lines))
		}
		for _, r := range recs {
			if _, ok := r[c.field]; !ok {
				t.Fatalf("%s: a record without %s: %v\n%s", c.filter, c.field, r, run.Log)
			}
		}
	}
}

// fluentBitVersion is the first line of `fluent-bit --version`.
func fluentBitVersion(fb string) string {
	out, _ := exec.Command(fb, "--version").Output()
	v, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(v)
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// costParsers are Fluent Bit's json parser, alone and taking the record time where
// k8s_audit takes it by default (requestReceivedTimestamp), keeping the field as
// k8s_audit does.
const costParsers = `[PARSER]
    Name        json
    Format      json

[PARSER]
    Name        json_time
    Format      json
    Time_Key    requestReceivedTimestamp
    Time_Format %Y-%m-%dT%H:%M:%S.%LZ
    Time_Keep   On
`

// costLua derives five of k8s_audit's fields the way a user would write them in Lua:
// duration_ms from the two timestamps, outcome from the stage and status code,
// user_type, sa_namespace and sa_name from the user name.
const costLua = `
local function ts(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, frac = s:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)%.?(%d*)Z$")
  if not y then return nil end
  local t = os.time({year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = tonumber(h), min = tonumber(mi), sec = tonumber(sec)})
  if frac ~= "" then t = t + tonumber("0." .. frac) end
  return t
end

function derive(tag, timestamp, record)
  local r, s = ts(record["requestReceivedTimestamp"]), ts(record["stageTimestamp"])
  if r and s then record["duration_ms"] = (s - r) * 1000 end
  local code = 0
  if type(record["responseStatus"]) == "table" and record["responseStatus"]["code"] then
    code = record["responseStatus"]["code"]
  end
  if record["stage"] == "Panic" then record["outcome"] = "panic"
  elseif code >= 500 then record["outcome"] = "error"
  elseif code >= 400 then record["outcome"] = "failure"
  else record["outcome"] = "success" end
  local u = ""
  if type(record["user"]) == "table" and type(record["user"]["username"]) == "string" then
    u = record["user"]["username"]
  end
  local ns, sa = u:match("^system:serviceaccount:([^:]+):(.+)$")
  if ns then
    record["user_type"], record["sa_namespace"], record["sa_name"] = "serviceaccount", ns, sa
  elseif u:find("^system:node:") then record["user_type"] = "node"
  elseif u == "system:anonymous" then record["user_type"] = "anonymous"
  elseif u:find("^system:") then record["user_type"] = "system"
  elseif u == "" then record["user_type"] = "unauthenticated"
  else record["user_type"] = "user" end
  return 2, timestamp, record
end
`
