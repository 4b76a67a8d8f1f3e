package deploy_test

// TestWebhookComponent renders deploy/ with the webhook component (deploy/webhook/),
// as its README says to, and checks what the recipe relies on: the DaemonSet on the
// host network with the probes on 127.0.0.1 and the TLS Secret mounted, and the
// pipeline with the http input on 127.0.0.1 (TLS, a required client certificate of
// its CA for one name) in place of tail, Fluent Bit's HTTP server on 127.0.0.1 only.
// testhost/webhook_test.go runs the input and the kubeconfig against a real
// kube-apiserver and Fluent Bit.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
)

func TestWebhookComponent(t *testing.T) {
	kubectl := kubectlPath(t)
	abs, _ := filepath.Abs(".")
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, abs)
	if err != nil {
		t.Fatal(err)
	}
	k := "resources:\n  - " + rel + "\ncomponents:\n  - " + rel + "/webhook\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize with deploy/webhook: %v\n%s", err, out)
	}
	var cm struct {
		Kind string
		Data map[string]string
	}
	for _, d := range strings.Split(string(out), "\n---\n") {
		switch {
		case strings.Contains(d, "kind: ConfigMap") && strings.Contains(d, "name: kubetrail-config"):
			if err := yaml.Unmarshal([]byte(d), &cm); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The DaemonSet's pod (field names of the API: decode's strict sigs.k8s.io/yaml).
	var pod corev1.PodSpec
	{
		var raw map[string]any
		for _, d := range strings.Split(string(out), "\n---\n") {
			if strings.Contains(d, "kind: DaemonSet") {
				if err := yaml.Unmarshal([]byte(d), &raw); err != nil {
					t.Fatal(err)
				}
			}
		}
		decode(t, doc{Kind: "PodSpec", YAML: mustYAML(t, at(raw, "spec.template.spec"))}, &pod)
	}
	if !pod.HostNetwork || pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("DaemonSet: hostNetwork %v, dnsPolicy %q", pod.HostNetwork, pod.DNSPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Host != "127.0.0.1" || p.HTTPGet.Path != "/api/v1/health" {
			t.Errorf("%s probe: %+v", name, p)
		}
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		mounted = mounted || (m.Name == "webhook-tls" && m.MountPath == "/fluent-bit/webhook-tls" && m.ReadOnly)
	}
	secret := false
	for _, v := range pod.Volumes {
		secret = secret || (v.Name == "webhook-tls" && v.Secret != nil && v.Secret.SecretName == "kubetrail-webhook-tls")
	}
	if !mounted || !secret {
		t.Errorf("the TLS Secret: mounted %v, volume %v", mounted, secret)
	}

	// The pipeline: deploy/webhook/fluent-bit.yaml, as it is.
	want, err := os.ReadFile("webhook/fluent-bit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["fluent-bit.yaml"] != string(want) || cm.Data["plugins.conf"] == "" {
		t.Fatalf("ConfigMap: fluent-bit.yaml is not deploy/webhook/fluent-bit.yaml, or plugins.conf is missing")
	}
	var fb map[string]any
	if err := yaml.Unmarshal(want, &fb); err != nil {
		t.Fatal(err)
	}
	if l := str(fb, "service.http_listen"); l != "127.0.0.1" {
		t.Errorf("service.http_listen %q on the host network", l)
	}
	var http map[string]any
	for _, in := range at(fb, "pipeline.inputs").([]any) {
		m := in.(map[string]any)
		switch m["name"] {
		case "tail":
			t.Errorf("a tail input beside the webhook: every event would come twice if the log is written too")
		case "http":
			http = m
		}
	}
	if http == nil {
		t.Fatalf("no http input")
	}
	for k, v := range map[string]string{
		"listen": "127.0.0.1", "port": "9880", "tls": "true", "tls.verify": "true", "tls.verify_client_cert": "true",
		"tls.ca_file": "/fluent-bit/webhook-tls/client-ca.crt", "tls.crt_file": "/fluent-bit/webhook-tls/server.crt",
		"tls.key_file": "/fluent-bit/webhook-tls/server.key", "tls.vhost": "kube-apiserver-audit", "tls.verify_hostname": "true",
	} {
		got := strings.NewReplacer("on", "true").Replace(strings.ToLower(fmt.Sprint(http[k])))
		if got != v {
			t.Errorf("http input: %s is %q, want %q", k, http[k], v)
		}
	}
	if at(http, "processors") == nil {
		t.Errorf("http input: no processors (k8s_audit)")
	}
}

func mustYAML(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
