package helm_test

// Rendering the chart (deploy/helm/kubetrail) with the Helm library, as `helm
// template` / `helm install` do, and reading deploy/ as kustomize builds it, both into
// objects compared field by field.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kubetrail/kubetrail/test/repo"
)

// releaseNamespace is the namespace the tests install the release into (-n): the
// chart's objects go to namespace.name, not there.
const releaseNamespace = "default"

// object is one Kubernetes object, rendered by Helm or read from deploy/.
type object struct {
	Kind, Name, Namespace string
	Obj                   map[string]any // as JSON decodes it (sigs.k8s.io/yaml)
}

func (o object) String() string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Namespace + "/" + o.Name
}

func (o object) yaml() string {
	b, _ := sigsyaml.Marshal(o.Obj)
	return string(b)
}

// parseObjects splits a YAML stream into its objects (empty documents left out).
func parseObjects(t *testing.T, what string, data []byte) []object {
	t.Helper()
	var out []object
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		b, err := yaml.Marshal(&n)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := sigsyaml.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, newObject(m))
	}
	return out
}

func newObject(m map[string]any) object {
	return object{Kind: str(m, "kind"), Name: str(m, "metadata.name"), Namespace: str(m, "metadata.namespace"), Obj: m}
}

// at follows a dotted path through maps.
func at(m any, path string) any {
	cur := m
	for _, p := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func str(m any, path string) string {
	s, _ := at(m, path).(string)
	return s
}

func chartDir(t *testing.T) string { return repo.Path(t, "deploy", "helm", "kubetrail") }

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	return ch
}

// rendered is what the chart renders for one release.
type rendered struct {
	Objects []object // in Helm's install order (releaseutil.InstallOrder)
	Notes   string
	Took    time.Duration
}

// render renders the chart as `helm install <release> -n default` with vals (nil:
// the defaults) would: chartutil.ToRenderValues (values.yaml coalesced with vals,
// the release, the default capabilities) and engine.Render, then Helm's own split
// and install order.
func render(t *testing.T, release string, vals map[string]any) rendered {
	t.Helper()
	r, err := tryRender(t, release, vals)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	return r
}

func tryRender(t *testing.T, release string, vals map[string]any) (rendered, error) {
	t.Helper()
	ch := loadChart(t)
	began := time.Now()
	opts := chartutil.ReleaseOptions{Name: release, Namespace: releaseNamespace, Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValues(ch, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return rendered{}, err
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		return rendered{}, err
	}
	var r rendered
	for name, content := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			r.Notes = content
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, chartutil.DefaultCapabilities.APIVersions, releaseutil.InstallOrder)
	if err != nil {
		return rendered{}, err
	}
	if len(hooks) != 0 {
		t.Errorf("the chart has %d hooks; it should have none", len(hooks))
	}
	r.Took = time.Since(began)
	for _, m := range manifests {
		r.Objects = append(r.Objects, parseObjects(t, m.Name, []byte(m.Content))...)
	}
	return r, nil
}

func find(objs []object, kind, name string) (object, bool) {
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			return o, true
		}
	}
	return object{}, false
}

func mustFind(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	o, ok := find(objs, kind, name)
	if !ok {
		var have []string
		for _, o := range objs {
			have = append(have, o.String())
		}
		t.Fatalf("no %s/%s among %q", kind, name, have)
	}
	return o
}

// decodeStrict decodes an object into a typed API struct, an unknown field being an
// error (a typo in a template).
func decodeStrict(t *testing.T, o object, v any) {
	t.Helper()
	b, err := sigsyaml.Marshal(o.Obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := sigsyaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
}

// ---- deploy/ as kustomize builds it ----------------------------------------------

// kustomization is the part of kustomization.yaml that deploy/ uses; the strict
// decoding fails on anything else, so that a new kustomize feature in deploy/ is
// noticed here rather than silently ignored.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
	Patches []struct {
		Path string `json:"path"`
	} `json:"patches"`
	ConfigMapGenerator []struct {
		Name      string   `json:"name"`
		Namespace string   `json:"namespace"`
		Behavior  string   `json:"behavior"`
		Files     []string `json:"files"`
	} `json:"configMapGenerator"`
	GeneratorOptions struct {
		DisableNameSuffixHash bool `json:"disableNameSuffixHash"`
	} `json:"generatorOptions"`
}

func readKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := sigsyaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml has what this reader does not know: %v", dir, err)
	}
	return k
}

var clusterScoped = []string{"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass"}

// kustomize builds deploy/ (and, with webhook, the component deploy/webhook/ on top)
// as `kubectl kustomize` does for what these kustomization.yaml files use: the
// resources in their order, the namespace on every namespaced object, the image
// names and tags, the strategic-merge patches and the ConfigMap merged from files.
// TestKustomizeReader checks it against kubectl kustomize.
func kustomize(t *testing.T, webhook bool) []object {
	t.Helper()
	dir := repo.Path(t, "deploy")
	k := readKustomization(t, dir)
	if len(k.Patches) > 0 || len(k.ConfigMapGenerator) > 0 {
		t.Fatalf("deploy/kustomization.yaml has patches or generators: extend kustomize()")
	}
	var objs []object
	for _, r := range k.Resources {
		b, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, parseObjects(t, r, b)...)
	}
	for i := range objs {
		o := &objs[i]
		if k.Namespace != "" && !slices.Contains(clusterScoped, o.Kind) {
			o.Obj["metadata"].(map[string]any)["namespace"] = k.Namespace
			o.Namespace = k.Namespace
		}
		for _, c := range containers(o.Obj) {
			image, _ := c["image"].(string)
			for _, im := range k.Images {
				name, tag := image, ""
				if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
					name, tag = image[:i], image[i+1:]
				}
				if name != im.Name {
					continue
				}
				if im.NewName != "" {
					name = im.NewName
				}
				if im.NewTag != "" {
					tag = im.NewTag
				}
				c["image"] = name + ":" + tag
			}
		}
	}
	if !webhook {
		return objs
	}

	wdir := filepath.Join(dir, "webhook")
	w := readKustomization(t, wdir)
	if w.Kind != "Component" || len(w.Resources) > 0 || len(w.Images) > 0 || w.Namespace != "" {
		t.Fatalf("deploy/webhook/kustomization.yaml: not the component this reader knows")
	}
	for _, p := range w.Patches {
		b, err := os.ReadFile(filepath.Join(wdir, p.Path))
		if err != nil {
			t.Fatal(err)
		}
		for _, patch := range parseObjects(t, p.Path, b) {
			if patch.Kind != "DaemonSet" {
				t.Fatalf("%s patches a %s: extend kustomize()", p.Path, patch.Kind)
			}
			i := slices.IndexFunc(objs, func(o object) bool { return o.Kind == patch.Kind && o.Name == patch.Name })
			if i < 0 {
				t.Fatalf("%s: no %s to patch", p.Path, patch)
			}
			merged, err := strategicpatch.StrategicMergeMapPatch(objs[i].Obj, patch.Obj, appsv1.DaemonSet{})
			if err != nil {
				t.Fatalf("%s: %v", p.Path, err)
			}
			objs[i] = newObject(merged)
		}
	}
	for _, g := range w.ConfigMapGenerator {
		if g.Behavior != "merge" || !w.GeneratorOptions.DisableNameSuffixHash {
			t.Fatalf("configMapGenerator %s: behavior %q: extend kustomize()", g.Name, g.Behavior)
		}
		i := slices.IndexFunc(objs, func(o object) bool { return o.Kind == "ConfigMap" && o.Name == g.Name })
		if i < 0 {
			t.Fatalf("configMapGenerator: no ConfigMap %s to merge into", g.Name)
		}
		data := objs[i].Obj["data"].(map[string]any)
		for _, f := range g.Files {
			b, err := os.ReadFile(filepath.Join(wdir, f))
			if err != nil {
				t.Fatal(err)
			}
			data[filepath.Base(f)] = string(b)
		}
	}
	return objs
}

// containers returns the containers of a workload's pod template.
func containers(obj map[string]any) []map[string]any {
	var out []map[string]any
	for _, key := range []string{"containers", "initContainers"} {
		list, _ := at(obj, "spec.template.spec."+key).([]any)
		for _, c := range list {
			if m, ok := c.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

// ---- comparing ---------------------------------------------------------------------

// helmLabels are the labels the chart adds to every object beside deploy/'s
// app.kubernetes.io/name (the Helm conventions); helmAnnotations those it adds to
// the pod template (a new configuration rolls the pods on helm upgrade).
var (
	helmLabels      = []string{"helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by"}
	helmAnnotations = []string{"checksum/config"}
)

// withoutHelm is a deep copy of obj without Helm's own labels and annotations.
func withoutHelm(obj map[string]any) map[string]any {
	b, _ := sigsyaml.Marshal(obj)
	var m map[string]any
	_ = sigsyaml.Unmarshal(b, &m)
	for _, meta := range []string{"metadata", "spec.template.metadata"} {
		mm, ok := at(m, meta).(map[string]any)
		if !ok {
			continue
		}
		for field, keys := range map[string][]string{"labels": helmLabels, "annotations": helmAnnotations} {
			l, ok := mm[field].(map[string]any)
			if !ok {
				continue
			}
			for _, k := range keys {
				delete(l, k)
			}
			if len(l) == 0 {
				delete(mm, field)
			}
		}
	}
	return m
}

// firstDiff describes where two texts differ first, by line.
func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(la) || i < len(lb); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y || i >= len(la) || i >= len(lb) {
			return fmt.Sprintf("line %d:\n  helm:      %q\n  kustomize: %q", i+1, x, y)
		}
	}
	return "no difference"
}

// compareWithKustomize checks that helm renders the same objects as kustomize: the
// same kinds, names and namespaces, and each object equal field by field (Helm's
// labels aside), the ConfigMap's fluent-bit.yaml to the byte.
func compareWithKustomize(t *testing.T, helm, kust []object) {
	t.Helper()
	names := func(objs []object) []string {
		var s []string
		for _, o := range objs {
			s = append(s, o.String())
		}
		slices.Sort(s)
		return s
	}
	if h, k := names(helm), names(kust); !slices.Equal(h, k) {
		t.Errorf("objects:\n helm      %q\n kustomize %q", h, k)
	}
	for _, k := range kust {
		h, ok := find(helm, k.Kind, k.Name)
		if !ok || h.Namespace != k.Namespace {
			continue // reported above
		}
		got, want := withoutHelm(h.Obj), withoutHelm(k.Obj)
		if k.Kind == "ConfigMap" {
			for key, v := range want["data"].(map[string]any) {
				g, _ := got["data"].(map[string]any)[key].(string)
				if g != v.(string) {
					t.Errorf("%s: data %s differs from deploy/'s, %s", k, key, firstDiff(g, v.(string)))
				}
			}
		}
		if !reflect.DeepEqual(got, want) {
			gy, _ := sigsyaml.Marshal(got)
			wy, _ := sigsyaml.Marshal(want)
			t.Errorf("%s differs from deploy/'s (Helm's labels left out), %s", k, firstDiff(string(gy), string(wy)))
		}
		// Helm's labels are there, and only those beside deploy/'s.
		for _, meta := range []string{"metadata", "spec.template.metadata"} {
			if at(k.Obj, meta) == nil {
				continue
			}
			labels, _ := at(h.Obj, meta+".labels").(map[string]any)
			for _, l := range helmLabels {
				if _, ok := labels[l]; !ok {
					t.Errorf("%s: %s.labels has no %s", h, meta, l)
				}
			}
		}
	}
}
