package k8sevents

import (
	"fmt"
	"net"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubetrail/kubetrail/conf"
)

// userAgent names kubetrail in the API server's audit log and metrics.
const userAgent = "kubetrail-k8s-events"

// restConfig builds the client configuration: from a kubeconfig, as kubectl would
// (kube_url overrides its server), or as a pod connects: the service's address from
// the environment, the service account's CA and token. client-go re-reads a token
// file (BearerTokenFile) as it rotates.
func restConfig(c conf.Events) (*rest.Config, error) {
	var rc *rest.Config
	if c.Kubeconfig != "" {
		var err error
		if rc, err = clientcmd.BuildConfigFromFlags(c.KubeURL, c.Kubeconfig); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", c.Kubeconfig, err)
		}
	} else {
		host := c.KubeURL
		if host == "" {
			host = "https://kubernetes.default.svc"
			if h, p := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"); h != "" && p != "" {
				host = "https://" + net.JoinHostPort(h, p)
			}
		}
		rc = &rest.Config{Host: host, BearerTokenFile: c.KubeTokenFile}
		if c.TLSVerify {
			if _, err := os.Stat(c.KubeCAFile); err != nil {
				return nil, fmt.Errorf("kube_ca_file: %w (not in a pod? set kube_ca_file, or kubeconfig)", err)
			}
			rc.TLSClientConfig.CAFile = c.KubeCAFile
		}
	}
	if !c.TLSVerify {
		rc.TLSClientConfig.Insecure = true
		rc.TLSClientConfig.CAFile, rc.TLSClientConfig.CAData = "", nil
	}
	if c.TLSVhost != "" {
		rc.TLSClientConfig.ServerName = c.TLSVhost
	}
	rc.UserAgent = userAgent
	// client-go's default rate limit (5 requests/s, bursts of 10) would throttle the
	// pages of the first LIST: 100k Events are 200 pages of 500, 40 s at 5/s. The
	// input makes few requests otherwise (one WATCH per kube_watch_timeout).
	rc.QPS, rc.Burst = 50, 100
	return rc, nil
}

// tokenWarning says why requests will fail when the token file cannot be read now;
// "" when it can (or none is used). Not fatal: a projected token may appear later.
func tokenWarning(rc *rest.Config) string {
	if rc.BearerTokenFile == "" {
		return ""
	}
	if _, err := os.ReadFile(rc.BearerTokenFile); err != nil {
		return fmt.Sprintf("kube_token_file: %v: requests will be rejected until it can be read", err)
	}
	return ""
}
