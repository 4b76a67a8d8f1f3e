package deploy_test

// The Dockerfile, checked without a container engine (none runs where this project is
// developed): pinned base images; the build stage runs the Makefile rules that CI's
// `make test` runs; the filter is a symbolic link in the image, checked by a stage the
// final image depends on; the plugins file, the default configuration and the
// DaemonSet agree on paths. The build stage's shell steps after `make` are run here
// for real (paths moved under a temporary folder), on the library `make` built.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/kubetrail/kubetrail/test/repo"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, COPY, ...
	Args string
	Line int
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(l)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		cur.Reset()
	}
	return out
}

// stage is one FROM ... AS name and its instructions.
type stage struct {
	From, Name string
	Ins        []instruction
}

// makeTargets returns the targets `make test` builds (its prerequisites, and all's),
// with the Makefile's variables expanded.
func makeTargets(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	rules := map[string][]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if m := regexp.MustCompile(`^(\w+)\s*(?::=|\?=|=)\s*(\S*)\s*$`).FindStringSubmatch(l); m != nil {
			vars[m[1]] = m[2]
		} else if m := regexp.MustCompile(`^([\w$()/.-]+):\s*([^=]*)$`).FindStringSubmatch(l); m != nil {
			rules[m[1]] = strings.Fields(m[2])
		}
	}
	expand := func(s string) string {
		for i := 0; i < 5; i++ {
			s = regexp.MustCompile(`\$\((\w+)\)`).ReplaceAllStringFunc(s, func(v string) string { return vars[v[2:len(v)-1]] })
		}
		return s
	}
	var out []string
	var walk func(target string)
	walk = func(target string) {
		for _, p := range rules[target] {
			p = expand(p)
			if p != "" && !slices.Contains(out, p) {
				out = append(out, p)
				walk(p)
			}
		}
	}
	walk("test")
	return out
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "../Dockerfile")
	args := map[string]string{}
	var stages []*stage
	for _, in := range ins {
		switch {
		case in.Cmd == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(in.Args, "=")
			args[k] = v
		case in.Cmd == "FROM":
			f := strings.Fields(in.Args)
			s := &stage{From: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.Name = f[2]
			}
			stages = append(stages, s)
		case len(stages) > 0:
			stages[len(stages)-1].Ins = append(stages[len(stages)-1].Ins, in)
		}
	}
	byName := map[string]*stage{}
	for _, s := range stages {
		byName[s.Name] = s
	}
	for _, name := range []string{"build", "image", "check"} {
		if byName[name] == nil {
			t.Fatalf("no stage %q in the Dockerfile", name)
		}
	}
	final := stages[len(stages)-1]

	// Pinned base images: a full version tag each (a digest may follow).
	goImage := regexp.MustCompile(`^golang:(1\.(\d+)\.\d+)-bookworm(@sha256:[0-9a-f]{64})?$`).FindStringSubmatch(args["GO_IMAGE"])
	if goImage == nil {
		t.Errorf("GO_IMAGE %q: want golang:1.N.P-bookworm (glibc 2.36), pinned", args["GO_IMAGE"])
	} else if gomod, err := os.ReadFile("../go.mod"); err == nil {
		m := regexp.MustCompile(`(?m)^go 1\.(\d+)`).FindSubmatch(gomod)
		if m == nil || atoi(goImage[2]) < atoi(string(m[1])) {
			t.Errorf("GO_IMAGE %s is older than go.mod's go directive", args["GO_IMAGE"])
		}
	}
	fb := regexp.MustCompile(`^fluent/fluent-bit:(\d+)\.(\d+)\.(\d+)(@sha256:[0-9a-f]{64})?$`).FindStringSubmatch(args["FLUENT_BIT_IMAGE"])
	if fb == nil {
		t.Errorf("FLUENT_BIT_IMAGE %q: want fluent/fluent-bit:X.Y.Z, pinned", args["FLUENT_BIT_IMAGE"])
	} else if major, minor := atoi(fb[1]), atoi(fb[2]); major < 4 || major == 4 && minor < 1 {
		t.Errorf("FLUENT_BIT_IMAGE %s: k8s_events needs Fluent Bit >= 4.1 (the *Ctx callbacks)", args["FLUENT_BIT_IMAGE"])
	}
	for _, s := range stages {
		if s.From != "${GO_IMAGE}" && s.From != "${FLUENT_BIT_IMAGE}" && byName[s.From] == nil {
			t.Errorf("FROM %s: neither a pinned ARG nor an earlier stage", s.From)
		}
	}
	if byName["build"].From != "${GO_IMAGE}" || byName["image"].From != "${FLUENT_BIT_IMAGE}" || final.From != "image" {
		t.Errorf("stages: build FROM %s, image FROM %s, final FROM %s", byName["build"].From, byName["image"].From, final.From)
	}

	// The build stage runs the Makefile's rules that `make test` (CI) runs, check-lib
	// among them.
	var buildRun string
	for _, in := range byName["build"].Ins {
		if in.Cmd == "RUN" && strings.HasPrefix(in.Args, "make ") {
			buildRun = in.Args
		}
	}
	makeCmd, rest, _ := strings.Cut(buildRun, "&&")
	targets := strings.Fields(makeCmd)[1:]
	ciTargets := makeTargets(t)
	for _, tg := range targets {
		if !slices.Contains(ciTargets, tg) {
			t.Errorf("the build stage runs make %s, which make test does not build (it builds %q)", tg, ciTargets)
		}
	}
	for _, want := range []string{"build/kubetrail.so", "check-lib"} {
		if !slices.Contains(targets, want) {
			t.Errorf("the build stage does not run make %s: %q", want, targets)
		}
	}

	// The rest of that RUN, executed here with /out under a temporary folder, on the
	// library make built: the link and the plugins file it makes.
	repo.Artefact(t, "build/kubetrail.so", "make")
	tmp := t.TempDir()
	script := strings.ReplaceAll(strings.TrimSpace(rest), "/out/", tmp+"/out/")
	if out, err := exec.Command("sh", "-c", "cd .. && "+script).CombinedOutput(); err != nil {
		t.Fatalf("the build stage's steps after make: %v\n%s\n%s", err, script, out)
	}
	link := filepath.Join(tmp, "out/plugins/flb-filter_k8s_audit.so")
	if dst, err := os.Readlink(link); err != nil || dst != "kubetrail.so" {
		t.Errorf("%s: %q, %v: want a symbolic link to kubetrail.so", link, dst, err)
	}
	if fi, err := os.Lstat(filepath.Join(tmp, "out/plugins/kubetrail.so")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("out/plugins/kubetrail.so is not a regular file: %v", err)
	}
	plugins, err := os.ReadFile(filepath.Join(tmp, "out/plugins.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, m := range regexp.MustCompile(`(?m)^\s*Path\s+(\S+)\s*$`).FindAllStringSubmatch(string(plugins), -1) {
		paths = append(paths, m[1])
	}
	wantPaths := []string{pluginsDir + "/kubetrail.so", pluginsDir + "/flb-filter_k8s_audit.so"}
	if !strings.HasPrefix(string(plugins), "[PLUGINS]\n") || !slices.Equal(paths, wantPaths) {
		t.Errorf("plugins.conf:\n%s\nwant [PLUGINS] and Path %q (the DaemonSet's and the ConfigMap's)", plugins, wantPaths)
	}

	// The image stage puts the files where plugins.conf and the configuration say.
	copies := map[string]string{} // destination -> source
	for _, in := range byName["image"].Ins {
		if in.Cmd == "COPY" {
			f := strings.Fields(in.Args)
			copies[f[len(f)-1]] = strings.Join(f[:len(f)-1], " ")
		}
	}
	if copies[pluginsDir+"/"] != "--from=build /out/plugins/" {
		t.Errorf("the plugins folder: COPY %q: want the folder /out/plugins/ copied whole to %s/ (links kept)", copies[pluginsDir+"/"], pluginsDir)
	}
	if copies["/fluent-bit/etc/plugins.conf"] != "--from=build /out/plugins.conf" {
		t.Errorf("plugins.conf is not copied to /fluent-bit/etc/plugins.conf: %v", copies)
	}
	if copies["/fluent-bit/etc/kubetrail.yaml"] != "conf/examples/image.yaml" {
		t.Errorf("conf/examples/image.yaml is not copied to /fluent-bit/etc/kubetrail.yaml: %v", copies)
	}
	var image yaml.Node
	b, err := os.ReadFile("../conf/examples/image.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &image); err != nil {
		t.Fatal(err)
	}
	if pf := get(get(image.Content[0], "service"), "plugins_file"); pf == nil || pf.Value != "/fluent-bit/etc/plugins.conf" {
		t.Errorf("conf/examples/image.yaml: service.plugins_file is not /fluent-bit/etc/plugins.conf")
	}

	// The check stage tests the link in the image stage's layer, and the final image
	// depends on it (BuildKit skips stages nothing depends on).
	var checkRun, checkCopy string
	for _, in := range byName["check"].Ins {
		switch in.Cmd {
		case "RUN":
			checkRun = in.Args
		case "COPY":
			checkCopy = in.Args
		}
	}
	if checkCopy != "--from=image "+pluginsDir+"/ /check/" || !strings.Contains(checkRun, "test -L /check/flb-filter_k8s_audit.so") {
		t.Errorf("check stage: COPY %q, RUN %q: want the image's plugins folder and test -L on the link", checkCopy, checkRun)
	}
	// Run that check here on a copy made as COPY makes it (links kept).
	checkDir := filepath.Join(tmp, "check")
	if out, err := exec.Command("cp", "-a", filepath.Join(tmp, "out/plugins"), checkDir).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
	checkScript := strings.ReplaceAll(strings.ReplaceAll(checkRun, "/check/", checkDir+"/"), "/link-checked", filepath.Join(tmp, "link-checked"))
	if out, err := exec.Command("sh", "-c", checkScript).CombinedOutput(); err != nil {
		t.Errorf("the check stage's RUN fails on the build's output: %v\n%s", err, out)
	}
	// And it fails on a copied file instead of a link.
	_ = os.Remove(filepath.Join(checkDir, "flb-filter_k8s_audit.so"))
	if out, err := exec.Command("cp", "../build/kubetrail.so", filepath.Join(checkDir, "flb-filter_k8s_audit.so")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	if err := exec.Command("sh", "-c", checkScript).Run(); err == nil {
		t.Errorf("the check stage's RUN passes with a copied library instead of the link")
	}
	dependsOnCheck := false
	for _, in := range final.Ins {
		if in.Cmd == "COPY" && strings.HasPrefix(in.Args, "--from=check ") {
			dependsOnCheck = true
		}
	}
	if !dependsOnCheck {
		t.Errorf("the final stage does not depend on the check stage: BuildKit would skip the check")
	}

	// The image runs the default configuration, and the DaemonSet its own.
	var entry, cmd string
	for _, in := range final.Ins {
		switch in.Cmd {
		case "ENTRYPOINT":
			entry = in.Args
		case "CMD":
			cmd = in.Args
		}
	}
	if entry != `["/fluent-bit/bin/fluent-bit"]` || cmd != `["-c", "/fluent-bit/etc/kubetrail.yaml"]` {
		t.Errorf("ENTRYPOINT %s CMD %s: want fluent-bit -c /fluent-bit/etc/kubetrail.yaml", entry, cmd)
	}

	// The build context leaves out build/: an up-to-date-looking library from the
	// developer's machine would otherwise be what make finds.
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil || !regexp.MustCompile(`(?m)^/?build/?$`).Match(ignore) {
		t.Errorf(".dockerignore does not exclude build/: %v", err)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
