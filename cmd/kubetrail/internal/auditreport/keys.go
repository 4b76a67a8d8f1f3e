package auditreport

import (
	"bytes"
	"strconv"

	"github.com/kubetrail/kubetrail/enrich"
)

// Labels of the keys a record does not have.
const (
	keyNone            = "(none)"
	keyUnauthenticated = "(unauthenticated)"
	keyNoGroup         = "(no groups)"
	keyOther           = "(other)"
)

// resourceKey is what "resource" means in every output: the GroupResource
// (resource[.group][/subresource]) of a resource request, the path of a non-resource
// request ("/healthz"; a leading "/" never starts a GroupResource, so the two cannot
// collide), else "(none)".
func resourceKey(dst []byte, s *enrich.Summary) []byte {
	switch {
	case len(s.GroupResource) > 0:
		return append(dst, s.GroupResource...)
	case len(s.NonResourceURL) > 0:
		return append(dst, s.NonResourceURL...)
	}
	return append(dst, keyNone...)
}

// userKey is user.username, "(unauthenticated)" for a request whose authentication
// failed (no user at all).
func userKey(dst []byte, s *enrich.Summary) []byte {
	if len(s.User) == 0 {
		return append(dst, keyUnauthenticated...)
	}
	return append(dst, s.User...)
}

// userAgentKey is the user agent's product, the part before the first "/" ("kubelet",
// "kubectl", "kube-controller-manager"): versions and platforms would split one client
// into many rows. A user agent without a product is shown whole.
func userAgentKey(dst []byte, s *enrich.Summary) []byte {
	switch {
	case len(s.UserAgentProduct) > 0:
		return append(dst, s.UserAgentProduct...)
	case len(s.UserAgent) > 0:
		return append(dst, s.UserAgent...)
	}
	return append(dst, keyNone...)
}

func codeKey(dst []byte, s *enrich.Summary) []byte {
	if s.Code == 0 {
		return append(dst, keyNone...)
	}
	return strconv.AppendInt(dst, int64(s.Code), 10)
}

func orNone(dst, v []byte) []byte {
	if len(v) == 0 {
		return append(dst, keyNone...)
	}
	return append(dst, v...)
}

// Groups every user has, which say nothing about who is calling.
var (
	groupAuthenticated   = []byte("system:authenticated")
	groupServiceAccounts = []byte("system:serviceaccounts")
)

// primaryGroupKey names the one group a request is stacked under in the report's
// requests-per-second chart, so that the stacks add up to the request rate: the user's
// first group other than system:authenticated and system:serviceaccounts (a service
// account's is then system:serviceaccounts:<namespace>, a kubelet's system:nodes),
// else the user name, else "(unauthenticated)".
func primaryGroupKey(dst []byte, s *enrich.Summary, groups [][]byte) []byte {
	for _, g := range groups {
		if bytes.Equal(g, groupAuthenticated) || bytes.Equal(g, groupServiceAccounts) || len(g) == 0 {
			continue
		}
		return append(dst, g...)
	}
	return userKey(dst, s)
}
