package testhost_test

// The example configurations of conf/, checked as a user would run them:
//
//   - every k8s_events and k8s_audit stanza names only properties the plugin has (Fluent
//     Bit cannot check them: the native filter has no config map, and the Go proxy
//     input reads only the keys it asks for), with values the parsers accept, and each
//     classic file says what its YAML twin says;
//   - each k8s_audit stanza runs in build/flb-testhost over the sample audit log with
//     the file's properties, and each k8s_events stanza in `flb-testhost input` against
//     a real kube-apiserver (test/testcluster), only the connection and the file
//     paths changed;
//   - with a real Fluent Bit ($FLUENT_BIT or on PATH): `fluent-bit --dry-run` accepts
//     every file (it checks the properties of tail, stdout and forward), the audit
//     examples run as they are, and the Events examples run against the test
//     apiserver (events-audit-forward into a second Fluent Bit listening with the
//     forward input).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/test/fluentbit"
	"github.com/kubetrail/kubetrail/test/testcluster"
)

// exampleFiles are the examples conf/ must have, each classic and YAML: Events to
// stdout; the audit log to stdout (the YAML one with k8s_audit as a processor); both
// to a forward output; the audit webhook (http input) to stdout; the audit log's and
// the Events' metrics (log_to_metrics, prometheus_exporter). And image.yaml, the
// image's default configuration.
var exampleFiles = []string{
	"events-stdout.conf", "events-stdout.yaml",
	"audit-tail.conf", "audit-tail.yaml",
	"events-audit-forward.conf", "events-audit-forward.yaml",
	"audit-webhook.conf", "audit-webhook.yaml",
	"audit-metrics.conf", "audit-metrics.yaml",
	"events-metrics.conf", "events-metrics.yaml",
	"image.yaml",
}

// daemonSetExamples run on every control-plane node: leader election on.
var daemonSetExamples = []string{"events-audit-forward.conf", "events-audit-forward.yaml", "image.yaml"}

// exampleEnv is the environment the tests give the examples, as a pod spec would.
var exampleEnv = map[string]string{"CLUSTER_NAME": "example-cluster", "POD_NAMESPACE": "default"}

// expandExample expands ${VAR} as Fluent Bit does when it loads the file.
func expandExample(v string) string {
	return os.Expand(v, func(k string) string { return exampleEnv[k] })
}

// envList is exampleEnv as KEY=value, plus more.
func envList(more ...string) []string {
	out := append([]string(nil), more...)
	for k, v := range exampleEnv {
		out = append(out, k+"="+v)
	}
	return out
}

// stanza is one section of an example: the service, or one plugin instance.
type stanza struct {
	Kind  string            // service, input, filter, processor (YAML, of the input before it), output
	Props map[string]string // lower-case keys, as Fluent Bit compares them
	Keys  []string          // the keys as written, in order
	// Multi holds every value of a property Fluent Bit lets a section set more than
	// once (multiKeys: a YAML list, or the key repeated), in order; Props has the first.
	Multi map[string][]string
	// Order is every lower-case key, once per value, in the order Fluent Bit sees them
	// (log_to_metrics applies its regex and exclude rules in that order).
	Order []string
	node  *yaml.Node // YAML: the mapping, so that set changes the document
}

// multiKeys are the properties the examples set more than once: Fluent Bit's
// FLB_CONFIG_MAP_MULT properties of log_to_metrics
// (plugins/filter_log_to_metrics/log_to_metrics.c, config_map).
var multiKeys = map[string]bool{"add_label": true, "label_field": true, "bucket": true, "regex": true, "exclude": true}

// add records one value of key (lower-case k).
func (s *stanza) add(key, value string) error {
	k := strings.ToLower(key)
	if _, dup := s.Props[k]; dup && !multiKeys[k] {
		return fmt.Errorf("%s set twice in one section", key)
	}
	if _, dup := s.Props[k]; !dup {
		s.Keys = append(s.Keys, key)
		s.Props[k] = value
	}
	if multiKeys[k] {
		if s.Multi == nil {
			s.Multi = map[string][]string{}
		}
		s.Multi[k] = append(s.Multi[k], value)
	}
	s.Order = append(s.Order, k)
	return nil
}

func (s *stanza) name() string { return s.Props["name"] }

// set changes or adds a property (in the YAML document too).
func (s *stanza) set(key, value string) {
	k := strings.ToLower(key)
	if _, ok := s.Props[k]; !ok {
		s.Keys = append(s.Keys, key)
		s.Order = append(s.Order, k)
	}
	s.Props[k] = value
	delete(s.Multi, k)
	if s.node == nil {
		return
	}
	for i := 0; i+1 < len(s.node.Content); i += 2 {
		if strings.EqualFold(s.node.Content[i].Value, key) {
			s.node.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
			return
		}
	}
	s.node.Content = append(s.node.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
}

// exampleConf is one parsed example.
type exampleConf struct {
	Path    string
	Stanzas []*stanza // the service first, then the plugins in file order
	Plugins []string  // YAML: the plugins: entries
	doc     *yaml.Node
}

// plugins returns the plugin stanzas named name.
func (c *exampleConf) plugins(name string) []*stanza {
	var out []*stanza
	for _, s := range c.Stanzas {
		if s.Kind != "service" && s.name() == name {
			out = append(out, s)
		}
	}
	return out
}

func (c *exampleConf) service() *stanza {
	for _, s := range c.Stanzas {
		if s.Kind == "service" {
			return s
		}
	}
	s := &stanza{Kind: "service", Props: map[string]string{}}
	c.Stanzas = append([]*stanza{s}, c.Stanzas...)
	return s
}

// parseExample reads a classic (.conf) or YAML (.yaml) Fluent Bit configuration.
func parseExample(path string) (*exampleConf, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml") {
		return parseYAMLConf(path, b)
	}
	return parseClassicConf(path, b)
}

// parseClassicConf parses the classic format as far as the examples use it: [SECTION]
// headers, "key value" lines, # comments. @INCLUDE, @SET and parsers are refused, so
// that an example using them gets this checker extended rather than half-checked.
func parseClassicConf(path string, b []byte) (*exampleConf, error) {
	c := &exampleConf{Path: path}
	var cur *stanza
	for i, line := range strings.Split(string(b), "\n") {
		l := strings.TrimSpace(line)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
			continue
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			kind := strings.ToLower(strings.Trim(l, "[]"))
			switch kind {
			case "service", "input", "filter", "output":
			default:
				return nil, fmt.Errorf("%s:%d: section [%s] is not supported by this checker", path, i+1, kind)
			}
			cur = &stanza{Kind: kind, Props: map[string]string{}}
			c.Stanzas = append(c.Stanzas, cur)
		case strings.HasPrefix(l, "@"):
			return nil, fmt.Errorf("%s:%d: %q is not supported by this checker", path, i+1, l)
		case cur == nil:
			return nil, fmt.Errorf("%s:%d: property outside a section", path, i+1)
		default:
			key, value, _ := strings.Cut(l, " ")
			if j := strings.IndexAny(l, " \t"); j > 0 {
				key, value = l[:j], strings.TrimSpace(l[j:])
			}
			if err := cur.add(key, value); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
			}
		}
	}
	return c, nil
}

// parseYAMLConf parses Fluent Bit's YAML format: service, plugins, and pipeline
// inputs (with their logs processors), filters and outputs.
func parseYAMLConf(path string, b []byte) (*exampleConf, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a YAML mapping", path)
	}
	c := &exampleConf{Path: path, doc: &doc}
	root := doc.Content[0]
	mapping := func(kind string, n *yaml.Node) (*stanza, error) {
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: line %d: a %s is not a mapping", path, n.Line, kind)
		}
		s := &stanza{Kind: kind, Props: map[string]string{}, node: n}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			var values []string
			switch {
			case v.Kind == yaml.ScalarNode:
				values = []string{v.Value}
			case v.Kind == yaml.SequenceNode && multiKeys[strings.ToLower(k)]:
				// Fluent Bit sets a list's items one by one (src/flb_config.c,
				// configure_plugins_type: CFL_VARIANT_ARRAY).
				for _, item := range v.Content {
					if item.Kind != yaml.ScalarNode {
						return nil, fmt.Errorf("%s: line %d: %s: a list of scalars", path, item.Line, k)
					}
					values = append(values, item.Value)
				}
			default:
				continue // processors, checked by the caller
			}
			for _, val := range values {
				if _, dup := s.Props[strings.ToLower(k)]; dup && !multiKeys[strings.ToLower(k)] {
					return nil, fmt.Errorf("%s: line %d: %s set twice", path, n.Content[i].Line, k)
				}
				if err := s.add(k, val); err != nil {
					return nil, fmt.Errorf("%s: line %d: %w", path, n.Content[i].Line, err)
				}
			}
		}
		return s, nil
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i].Value, root.Content[i+1]
		switch key {
		case "service":
			s, err := mapping("service", val)
			if err != nil {
				return nil, err
			}
			c.Stanzas = append([]*stanza{s}, c.Stanzas...)
		case "plugins":
			for _, p := range val.Content {
				c.Plugins = append(c.Plugins, p.Value)
			}
		case "pipeline":
			for j := 0; j+1 < len(val.Content); j += 2 {
				section, list := val.Content[j].Value, val.Content[j+1]
				kind := strings.TrimSuffix(section, "s")
				if kind != "input" && kind != "filter" && kind != "output" {
					return nil, fmt.Errorf("%s: pipeline.%s is not supported by this checker", path, section)
				}
				for _, n := range list.Content {
					s, err := mapping(kind, n)
					if err != nil {
						return nil, err
					}
					c.Stanzas = append(c.Stanzas, s)
					for k := 0; k+1 < len(n.Content); k += 2 {
						if n.Content[k+1].Kind == yaml.ScalarNode || s.Multi[strings.ToLower(n.Content[k].Value)] != nil {
							continue
						}
						if n.Content[k].Value != "processors" {
							return nil, fmt.Errorf("%s: line %d: %s is not supported by this checker", path, n.Content[k].Line, n.Content[k].Value)
						}
						procs := n.Content[k+1]
						for m := 0; m+1 < len(procs.Content); m += 2 {
							for _, pn := range procs.Content[m+1].Content {
								p, err := mapping("processor", pn)
								if err != nil {
									return nil, err
								}
								c.Stanzas = append(c.Stanzas, p)
							}
						}
					}
				}
			}
		default:
			return nil, fmt.Errorf("%s: top-level %q is not supported by this checker", path, key)
		}
	}
	return c, nil
}

// write writes the (possibly changed) example into dir under its own name and returns
// the path.
func (c *exampleConf) write(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(c.Path))
	var b []byte
	if c.doc != nil {
		var err error
		if b, err = yaml.Marshal(c.doc); err != nil {
			t.Fatal(err)
		}
	} else {
		var buf bytes.Buffer
		for _, s := range c.Stanzas {
			fmt.Fprintf(&buf, "[%s]\n", strings.ToUpper(s.Kind))
			for _, k := range s.Keys {
				vals, ok := s.Multi[strings.ToLower(k)]
				if !ok {
					vals = []string{s.Props[strings.ToLower(k)]}
				}
				for _, v := range vals {
					fmt.Fprintf(&buf, "    %s %s\n", k, v)
				}
			}
			buf.WriteString("\n")
		}
		b = buf.Bytes()
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkKubetrailStanza checks that a k8s_events or k8s_audit stanza names only
// properties the plugin has and that the plugin accepts its values (as Fluent Bit
// would pass them: ${VAR} expanded from the environment).
func checkKubetrailStanza(s *stanza) error {
	var props []conf.Property
	switch {
	case s.name() == "k8s_events" && s.Kind == "input":
		props = conf.EventsProperties
	case s.name() == "k8s_audit" && (s.Kind == "filter" || s.Kind == "processor"):
		props = conf.AuditProperties
	default:
		return fmt.Errorf("%s %s is not a kubetrail plugin", s.Kind, s.name())
	}
	given := map[string]string{}
	for _, k := range s.Keys {
		given[k] = s.Props[strings.ToLower(k)]
	}
	own, unknown := fluentbit.PluginProperties(s.Kind, given, props)
	if len(unknown) > 0 {
		return fmt.Errorf("%s %s: unknown properties %q (see the Configuration tables in docs/k8s-audit.md and docs/k8s-events.md)", s.Kind, s.name(), unknown)
	}
	g := conf.MapGetter{}
	for k, v := range own {
		g[k] = os.ExpandEnv(v)
	}
	var err error
	if s.name() == "k8s_events" {
		_, err = conf.ParseEvents(g)
	} else {
		_, err = conf.ParseAudit(g)
	}
	return err
}

// kubetrailProps is what a classic file and its YAML twin must agree on: each
// kubetrail plugin's own properties (not match or tag, whose place differs between a
// filter and a processor), in file order.
func kubetrailProps(c *exampleConf) []string {
	var out []string
	for _, s := range c.Stanzas {
		if s.name() != "k8s_events" && s.name() != "k8s_audit" {
			continue
		}
		var kv []string
		for k, v := range s.Props {
			if k != "match" && k != "tag" {
				kv = append(kv, k+"="+v)
			}
		}
		sort.Strings(kv)
		out = append(out, strings.Join(kv, " "))
	}
	return out
}

func loadExamples(t *testing.T) []*exampleConf {
	t.Helper()
	var out []*exampleConf
	for _, f := range exampleFiles {
		c, err := parseExample(filepath.Join("../../conf/examples", f))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	// Any other example in conf/ must be listed above, so that it is checked.
	all, _ := filepath.Glob("../../conf/examples/*.conf")
	yamls, _ := filepath.Glob("../../conf/examples/*.yaml")
	for _, f := range append(all, yamls...) {
		if !slices.Contains(exampleFiles, filepath.Base(f)) {
			t.Errorf("%s is not in exampleFiles: add it there so that it is tested", f)
		}
	}
	return out
}

// TestExampleConfigProperties: every kubetrail stanza of every example names only
// existing properties with accepted values; the examples cover what they claim; each
// classic file and its YAML twin configure kubetrail the same.
func TestExampleConfigProperties(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "kubetrail") // as in a pod: leader_election's namespace
	examples := loadExamples(t)
	byName := map[string]*exampleConf{}
	for _, c := range examples {
		byName[filepath.Base(c.Path)] = c
		n := 0
		for _, s := range c.Stanzas {
			if s.name() == "k8s_events" || s.name() == "k8s_audit" {
				n++
				if err := checkKubetrailStanza(s); err != nil {
					t.Errorf("%s: %v", c.Path, err)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s uses no kubetrail plugin", c.Path)
		}
	}
	for _, f := range exampleFiles {
		if !strings.HasSuffix(f, ".conf") {
			continue
		}
		twin := strings.TrimSuffix(f, ".conf") + ".yaml"
		a, b := kubetrailProps(byName[f]), kubetrailProps(byName[twin])
		if !slices.Equal(a, b) {
			t.Errorf("%s and %s configure kubetrail differently:\n\t%q\n\t%q", f, twin, a, b)
		}
	}
	// What each example is for.
	has := func(f, kind, name string) bool {
		return slices.ContainsFunc(byName[f].Stanzas, func(s *stanza) bool { return s.Kind == kind && s.name() == name })
	}
	for _, want := range []struct{ kind, name string }{{"input", "k8s_events"}, {"input", "tail"}, {"processor", "k8s_audit"}, {"output", "stdout"}} {
		if !has("image.yaml", want.kind, want.name) {
			t.Errorf("image.yaml has no %s %s", want.name, want.kind)
		}
	}
	for _, ext := range []string{".conf", ".yaml"} {
		audit := "filter"
		if ext == ".yaml" {
			audit = "processor"
		}
		for _, want := range []struct{ file, kind, name string }{
			{"events-stdout", "input", "k8s_events"}, {"events-stdout", "output", "stdout"},
			{"audit-tail", "input", "tail"}, {"audit-tail", audit, "k8s_audit"}, {"audit-tail", "output", "stdout"},
			{"events-audit-forward", "input", "k8s_events"}, {"events-audit-forward", "input", "tail"},
			{"events-audit-forward", "filter", "k8s_audit"}, {"events-audit-forward", "output", "forward"},
			{"audit-webhook", "input", "http"}, {"audit-webhook", audit, "k8s_audit"}, {"audit-webhook", "output", "stdout"},
		} {
			if !has(want.file+ext, want.kind, want.name) {
				t.Errorf("%s%s has no %s %s", want.file, ext, want.name, want.kind)
			}
		}
	}
	// Real-world defaults: a db (restarts resume), leader election where several
	// instances run (the DaemonSet example), the in-cluster connection.
	for _, c := range examples {
		for _, s := range c.plugins("k8s_events") {
			if s.Props["db"] == "" {
				t.Errorf("%s: k8s_events without db", c.Path)
			}
			if s.Props["kube_url"] != "" || s.Props["kubeconfig"] != "" {
				t.Errorf("%s: k8s_events should connect in-cluster (no kube_url or kubeconfig)", c.Path)
			}
			if slices.Contains(daemonSetExamples, filepath.Base(c.Path)) != (s.Props["leader_election"] == "on") {
				t.Errorf("%s: leader_election %q: on only in the DaemonSet examples", c.Path, s.Props["leader_election"])
			}
		}
	}
}

// TestExampleConfigCheckCatchesTypos proves that the property check above fails on a
// misspelled property, which neither Fluent Bit nor the plugins would report.
func TestExampleConfigCheckCatchesTypos(t *testing.T) {
	for _, f := range []string{"events-audit-forward.conf", "events-audit-forward.yaml", "audit-tail.yaml"} {
		for _, plugin := range []string{"k8s_events", "k8s_audit"} {
			c, err := parseExample(filepath.Join("../../conf/examples", f))
			if err != nil {
				t.Fatal(err)
			}
			ss := c.plugins(plugin)
			if len(ss) == 0 {
				continue
			}
			s := ss[0]
			if err := checkKubetrailStanza(s); err != nil && plugin == "k8s_audit" {
				t.Fatalf("%s: %v", f, err)
			}
			typo := map[string]string{"k8s_events": "clustername", "k8s_audit": "dorp"}[plugin]
			s.set(typo, "x")
			err = checkKubetrailStanza(s)
			if err == nil || !strings.Contains(err.Error(), typo) {
				t.Errorf("%s: %s with property %q: %v, want an error naming it", f, plugin, typo, err)
			}
		}
	}
}

// auditSummary is the k8s_audit filter's "stopped:" log line.
var auditSummary = regexp.MustCompile(`stopped: chunks=\d+ records_in=(\d+) records_out=(\d+) dropped=(\d+) not_audit=(\d+)`)

// TestExampleConfigsInTestHost runs each kubetrail stanza of each example in
// build/flb-testhost: k8s_audit over the audit log its example tails (the bundled
// sample when the example tails a node's log), k8s_events against a real
// kube-apiserver with only the connection and db changed.
func TestExampleConfigsInTestHost(t *testing.T) {
	examples := loadExamples(t)
	host, lib := paths(t)
	repo, _ := filepath.Abs("../..")

	t.Run("k8s_audit", func(t *testing.T) {
		for _, c := range examples {
			for i, s := range c.plugins("k8s_audit") {
				t.Run(fmt.Sprintf("%s#%d", filepath.Base(c.Path), i), func(t *testing.T) {
					log := filepath.Join(repo, "conf/examples/sample-audit.log")
					if tails := c.plugins("tail"); len(tails) > 0 {
						if p := tails[0].Props["path"]; !filepath.IsAbs(p) {
							log = filepath.Join(repo, p)
						}
					}
					args := []string{"filter", "-l", lib}
					for _, k := range s.Keys {
						if lk := strings.ToLower(k); lk != "name" && lk != "match" && lk != "match_regex" {
							v := s.Props[lk]
							if lk == "dedup_file" {
								v = filepath.Join(t.TempDir(), "audit-dedup") // the node's state path
							}
							args = append(args, "-p", lk+"="+v)
						}
					}
					cmd := exec.Command(host, append(args, log)...)
					var stdout, stderr bytes.Buffer
					cmd.Stdout, cmd.Stderr = &stdout, &stderr
					if err := cmd.Run(); err != nil {
						t.Fatalf("flb-testhost filter %q: %v\n%s", args, err, stderr.String())
					}
					m := auditSummary.FindStringSubmatch(stderr.String())
					if m == nil {
						t.Fatalf("no summary line:\n%s", stderr.String())
					}
					in, _ := strconv.Atoi(m[1])
					out, _ := strconv.Atoi(m[2])
					dropped, _ := strconv.Atoi(m[3])
					lines := len(nonEmptyLines(t, log))
					recs := strings.Split(strings.TrimSpace(stdout.String()), "\n")
					if in != lines || out != len(recs) || out == 0 || m[4] != "0" {
						t.Fatalf("%d lines in the log, %d records printed; filter: %s", lines, len(recs), m[0])
					}
					if (s.Props["drop"] != "" || s.Props["keep"] != "") != (dropped > 0) {
						t.Errorf("keep %q, drop %q: %d dropped", s.Props["keep"], s.Props["drop"], dropped)
					}
					for _, r := range recs {
						var rec map[string]any
						if err := json.Unmarshal([]byte(r), &rec); err != nil {
							t.Fatalf("not JSON: %v: %.200s", err, r)
						}
						if rec["auditID"] == nil || rec["outcome"] == nil || rec["parse_error"] != nil {
							t.Errorf("record not enriched: %.300s", r)
						}
						if strings.HasPrefix(fmt.Sprint(rec["request_path"]), "/readyz") && strings.Contains(s.Props["drop"], "/readyz") {
							t.Errorf("a /readyz probe passed the drop rule: %.300s", r)
						}
					}
				})
			}
		}
	})

	t.Run("k8s_events", func(t *testing.T) {
		e := newEvCluster(t)
		n := 0
		for _, c := range examples {
			for i, s := range c.plugins("k8s_events") {
				n++
				name := fmt.Sprintf("%s#%d", filepath.Base(c.Path), i)
				t.Run(name, func(t *testing.T) {
					dir := t.TempDir()
					props := map[string]string{}
					for k, v := range s.Props {
						if k != "name" {
							props[k] = expandExample(v)
						}
					}
					props["kube_url"], props["kube_ca_file"], props["kube_token_file"] = e.c.URL, e.c.CAFile, e.tokenFile
					props["db"] = filepath.Join(dir, "events.db")
					var list []string
					for k, v := range props {
						list = append(list, k+"="+v)
					}
					out := filepath.Join(dir, "out.jsonl")
					// POD_NAMESPACE and POD_NAME as the downward API sets them in a pod:
					// leader_election's Lease namespace and identity.
					h := startInput(t, name, out, filepath.Join(dir, "host.log"), list,
						envList(fmt.Sprintf("POD_NAME=example-%d", n))...)
					want := map[evKey]time.Time{}
					for j := 0; j < 3; j++ {
						k := e.mustCreate(t, fmt.Sprintf("example-%d-%d", n, j))
						want[k] = time.Now()
					}
					waitUntil(t, "the Events created", inputWait, func() (bool, string) {
						if h.exited() {
							t.Fatalf("the host exited: %v\n%s", h.err, h.log())
						}
						recs, _ := readOut(t, out)
						return len(missing(want, recs)) == 0, fmt.Sprintf("%d records", len(recs))
					})
					if cn := expandExample(s.Props["cluster_name"]); cn != "" {
						for _, l := range nonEmptyLines(t, out) {
							if !strings.Contains(l, `"cluster_name":`+strconv.Quote(cn)) {
								t.Errorf("record without cluster_name %q: %.300s", cn, l)
							}
						}
					}
					if on, _ := conf.ParseBool(s.Props["leader_election"]); on && !h.logHas("is now the leader") {
						t.Errorf("leader_election on, but no leader logged")
					}
					h.term()
					if strings.Contains(h.log(), "[error]") {
						t.Errorf("errors logged:\n%s", h.log())
					}
				})
			}
		}
		if n < 4 {
			t.Errorf("%d k8s_events stanzas in the examples, want at least 4", n)
		}
	})
}

// nonEmptyLines returns the non-empty lines of a file.
func nonEmptyLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestExampleConfigsDryRun: a real Fluent Bit accepts every example (`--dry-run` checks
// the properties of its own plugins, and loads the library).
func TestExampleConfigsDryRun(t *testing.T) {
	bin := fluentBit(t)
	paths(t)
	repo, _ := filepath.Abs("../..")
	for _, f := range exampleFiles {
		t.Run(f, func(t *testing.T) {
			cfg := "conf/examples/" + f
			// The image's plugins file (/fluent-bit/etc/plugins.conf) is not on this
			// machine: build/plugins.conf, which names the same library, stands in.
			c, err := parseExample(filepath.Join(repo, cfg))
			if err != nil {
				t.Fatal(err)
			}
			rewrite := false
			if pf := c.service().Props["plugins_file"]; filepath.IsAbs(pf) {
				if _, err := os.Stat(pf); err != nil {
					c.service().set("plugins_file", filepath.Join(repo, "build/plugins.conf"))
					rewrite = true
				}
			}
			// Fluent Bit's --dry-run crashes (SIGSEGV after "pausing k8s_events.0")
			// on any Go-proxy input with threaded off, the old library's too: its
			// shutdown pauses the input, and flb_proxy_input_cb_pause
			// (src/flb_plugin_proxy.c) passes proxy->instance, which only cb_init
			// sets, to flb_input_collector_pause. The dry run checks the rest threaded.
			for _, ev := range c.plugins("k8s_events") {
				if strings.EqualFold(ev.Props["threaded"], "off") {
					ev.set("threaded", "on")
					rewrite = true
				}
			}
			if rewrite {
				// a classic file's relative plugins_file is relative to the file
				if pf := c.service().Props["plugins_file"]; pf != "" && !filepath.IsAbs(pf) {
					c.service().set("plugins_file", filepath.Join(repo, filepath.Dir(cfg), pf))
				}
				cfg = c.write(t, t.TempDir())
			}
			cmd := exec.Command(bin, "--dry-run", "-c", cfg)
			cmd.Dir = repo
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "configuration test is successful") {
				t.Fatalf("fluent-bit --dry-run -c %s: %v\n%s", cfg, err, out)
			}
		})
	}
}

// TestExampleConfigsInRealFluentBit runs the audit examples in conf/ as a user would
// (from the repository root, after make) and checks that the bundled sample comes out
// enriched, with the recommended drop rule applied and no error logged.
func TestExampleConfigsInRealFluentBit(t *testing.T) {
	fluentBit(t)
	paths(t)
	// 12 sample events; the example's drop rule removes a /readyz probe and a lease renewal.
	const want = 10
	for _, cfg := range []string{"conf/examples/audit-tail.conf", "conf/examples/audit-tail.yaml"} {
		t.Run(filepath.Base(cfg), func(t *testing.T) {
			run := runFluentBit(t, "../..", cfg, want)
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

func freeTCPPort(t *testing.T) int {
	t.Helper()
	p, err := testcluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return p[0]
}

// TestExampleEventConfigsInRealFluentBit runs the Events examples in a real Fluent Bit
// against the test kube-apiserver: the files as they are but for the API server's
// address and credentials, the database and state paths, the audit log path (the
// bundled sample) and the forward destination (a second Fluent Bit with the forward
// input, printing what it receives).
func TestExampleEventConfigsInRealFluentBit(t *testing.T) {
	bin := fluentBit(t)
	paths(t)
	repo, _ := filepath.Abs("../..")
	pluginsConf := filepath.Join(repo, "build/plugins.conf")
	e := newEvCluster(t)
	n := 0
	for _, f := range []string{"events-stdout.conf", "events-stdout.yaml", "events-audit-forward.conf", "events-audit-forward.yaml", "image.yaml"} {
		t.Run(f, func(t *testing.T) {
			n++
			c, err := parseExample(filepath.Join(repo, "conf", "examples", f))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if _, ok := c.service().Props["plugins_file"]; ok {
				c.service().set("plugins_file", pluginsConf) // classic: relative to the file
			}
			if _, ok := c.service().Props["storage.path"]; ok {
				c.service().set("storage.path", filepath.Join(dir, "flb-storage"))
			}
			c.service().set("grace", "1")
			if _, ok := c.service().Props["http_port"]; ok {
				c.service().set("http_port", strconv.Itoa(freeTCPPort(t)))
			}
			for _, s := range c.plugins("k8s_events") {
				s.set("kube_url", e.c.URL)
				s.set("kube_ca_file", e.c.CAFile)
				s.set("kube_token_file", e.tokenFile)
				s.set("db", filepath.Join(dir, "events.db"))
			}
			for _, s := range c.plugins("tail") {
				s.set("path", filepath.Join(repo, "conf/examples/sample-audit.log"))
				s.set("db", filepath.Join(dir, "tail.db"))
			}
			for _, s := range c.plugins("k8s_audit") {
				if _, ok := s.Props["dedup_file"]; ok {
					s.set("dedup_file", filepath.Join(dir, "audit-dedup"))
				}
			}
			receiver := (*fluentbit.Process)(nil)
			if fw := c.plugins("forward"); len(fw) > 0 {
				port := freeTCPPort(t)
				rcfg := filepath.Join(dir, "receiver.conf")
				if err := os.WriteFile(rcfg, []byte(fmt.Sprintf(`[SERVICE]
    Flush     1
    Grace     1
    Log_Level info

[INPUT]
    Name   forward
    Listen 127.0.0.1
    Port   %d

[OUTPUT]
    Name   stdout
    Match  *
    Format json_lines
`, port)), 0o644); err != nil {
					t.Fatal(err)
				}
				receiver = fluentbit.Start(t, bin, dir, rcfg)
				for _, s := range fw {
					s.set("host", "127.0.0.1")
					s.set("port", strconv.Itoa(port))
				}
			}
			cfg := c.write(t, dir)
			sender := fluentbit.Start(t, bin, repo, cfg, envList(fmt.Sprintf("POD_NAME=fluent-bit-%d", n))...)
			out := sender
			if receiver != nil {
				out = receiver
			}
			names := map[string]bool{}
			for j := 0; j < 3; j++ {
				name := fmt.Sprintf("fb-example-%d-%d", n, j)
				e.mustCreate(t, name)
				names[name] = true
			}
			wantAudit := 0
			if len(c.plugins("tail")) > 0 {
				wantAudit = 10 // the 12 sample events but the two the drop rule removes
			}
			var events, audit int
			waitUntil(t, "the Events created and the audit records", inputWait, func() (bool, string) {
				if sender.Exited() || (receiver != nil && receiver.Exited()) {
					t.Fatalf("Fluent Bit exited")
				}
				recs, _ := out.Snapshot()
				events, audit = 0, 0
				for _, r := range recs {
					md, _ := r["metadata"].(map[string]any)
					if name, _ := md["name"].(string); names[name] {
						events++
						if r["cluster_name"] != expandExample(c.plugins("k8s_events")[0].Props["cluster_name"]) {
							t.Errorf("record without the example's cluster_name: %v", r)
						}
					}
					if r["auditID"] != nil {
						audit++
						if r["outcome"] == nil {
							t.Errorf("audit record not enriched: %v", r)
						}
					}
				}
				return events >= len(names) && audit >= wantAudit, fmt.Sprintf("%d of our Events, %d audit records", events, audit)
			})
			time.Sleep(2 * time.Second) // a duplicate would show by now
			sender.Stop()
			if receiver != nil {
				time.Sleep(time.Second)
			}
			_, log := sender.Snapshot()
			if strings.Contains(log, "[error]") {
				t.Errorf("errors logged:\n%s", log)
			}
			recs, _ := out.Snapshot()
			events, audit = 0, 0
			for _, r := range recs {
				md, _ := r["metadata"].(map[string]any)
				if name, _ := md["name"].(string); names[name] {
					events++
				}
				if r["auditID"] != nil {
					audit++
				}
			}
			if events != len(names) || audit != wantAudit {
				t.Errorf("%d records of our %d Events, %d audit records (want %d)", events, len(names), audit, wantAudit)
			}
			if slices.Contains(daemonSetExamples, f) && !strings.Contains(log, "is now the leader") {
				t.Errorf("no leader election logged:\n%s", log)
			}
		})
	}
}
