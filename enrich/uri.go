package enrich

import (
	"bytes"
	"net/url"
)

// requestTarget is what a request URI says about the object it addresses. It is used
// when the audit event has no objectRef (RequestReceived stages of some versions,
// events from proxies) and always for the request path and query.
type requestTarget struct {
	path                                                 []byte
	apiGroup, apiVersion, namespace, resource, name, sub []byte
	isResource                                           bool
}

// parseRequestPath splits /api/v1/namespaces/ns/pods/name/sub and
// /apis/group/version/... into their parts (the apiserver's RequestInfoFactory rules,
// restricted to what an audit URI can hold). Discovery paths such as /apis/apps/v1 and
// anything else are non-resource requests.
func parseRequestPath(p []byte) requestTarget {
	t := requestTarget{path: p}
	var parts [8][]byte
	n := 0
	rest := p
	if len(rest) > 0 && rest[0] == '/' {
		rest = rest[1:]
	}
	for len(rest) > 0 && n < len(parts) {
		i := bytes.IndexByte(rest, '/')
		if i < 0 {
			parts[n] = rest
			n++
			rest = nil
			break
		}
		parts[n] = rest[:i]
		n++
		rest = rest[i+1:]
	}
	if len(rest) > 0 && n == len(parts) {
		return t // deeper than any resource path: proxy or non-resource
	}
	seg := parts[:n]
	switch {
	case len(seg) >= 3 && string(seg[0]) == "api":
		t.apiVersion = seg[1]
		seg = seg[2:]
	case len(seg) >= 4 && string(seg[0]) == "apis":
		t.apiGroup, t.apiVersion = seg[1], seg[2]
		seg = seg[3:]
	default:
		return t
	}
	if len(seg) > 0 && string(seg[0]) == "watch" { // deprecated /watch/ paths
		seg = seg[1:]
	}
	if len(seg) >= 2 && string(seg[0]) == "namespaces" {
		if len(seg) == 2 || len(seg) == 3 && len(seg[2]) > 0 && !isNamespacedList(seg) {
			// /namespaces/{name}[/{subresource}] is the namespace object itself.
			t.resource, t.name = seg[0], seg[1]
			if len(seg) == 3 {
				t.sub = seg[2]
			}
			t.isResource = true
			return t
		}
		t.namespace = seg[1]
		seg = seg[2:]
	}
	if len(seg) == 0 || len(seg[0]) == 0 || len(seg) > 3 {
		return requestTarget{path: p}
	}
	t.resource = seg[0]
	if len(seg) > 1 {
		t.name = seg[1]
	}
	if len(seg) > 2 {
		t.sub = seg[2]
	}
	t.isResource = true
	return t
}

// isNamespacedList tells /namespaces/ns/pods (a list of pods in ns) from
// /namespaces/ns/status (the namespace's own subresource). The namespace
// subresources are status and finalize.
func isNamespacedList(seg [][]byte) bool {
	s := string(seg[2])
	return s != "status" && s != "finalize"
}

// queryParams are the request parameters that change what a request costs or does.
type queryParams struct {
	watch, follow                                                bool
	watchSet                                                     bool
	limit                                                        int64
	limitSet                                                     bool
	resourceVersion, resourceVersionMatch, fieldSelector         []byte
	labelSelector, fieldManager, dryRun, timeoutSeconds          []byte
	rvSet, rvmSet, fsSet, lsSet, fmSet, drSet, tsSet, hasCommand bool
	scratch                                                      []byte
}

// parseQuery reads the parameters of interest from a raw query string. Values are
// unescaped only when they contain an escape, so the usual query costs no allocation.
func (q *queryParams) parse(raw []byte) {
	*q = queryParams{scratch: q.scratch[:0]}
	for len(raw) > 0 {
		var kv []byte
		kv, raw = nextParam(raw)
		k, v := kv, []byte(nil)
		if i := bytes.IndexByte(kv, '='); i >= 0 {
			k, v = kv[:i], kv[i+1:]
		}
		v = q.unescape(v)
		switch string(k) {
		case "watch":
			q.watch, q.watchSet = isTrue(v), true
		case "follow":
			q.follow = isTrue(v)
		case "limit":
			if n, ok := atoi(v); ok {
				q.limit, q.limitSet = n, true
			}
		case "resourceVersion":
			q.resourceVersion, q.rvSet = v, true
		case "resourceVersionMatch":
			q.resourceVersionMatch, q.rvmSet = v, true
		case "fieldSelector":
			q.fieldSelector, q.fsSet = v, true
		case "labelSelector":
			q.labelSelector, q.lsSet = v, true
		case "fieldManager":
			q.fieldManager, q.fmSet = v, true
		case "dryRun":
			q.dryRun, q.drSet = v, true
		case "timeoutSeconds":
			q.timeoutSeconds, q.tsSet = v, true
		case "command":
			q.hasCommand = true
		}
	}
}

func (q *queryParams) unescape(v []byte) []byte {
	if bytes.IndexByte(v, '%') < 0 && bytes.IndexByte(v, '+') < 0 {
		return v
	}
	s, err := url.QueryUnescape(string(v))
	if err != nil {
		return v
	}
	start := len(q.scratch)
	q.scratch = append(q.scratch, s...)
	return q.scratch[start:len(q.scratch):len(q.scratch)]
}

func isTrue(v []byte) bool { return string(v) == "true" || string(v) == "1" }

func atoi(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// nextParam cuts the first key=value parameter off a raw query string.
func nextParam(query []byte) (kv, rest []byte) {
	if i := bytes.IndexByte(query, '&'); i >= 0 {
		return query[:i], query[i+1:]
	}
	return query, nil
}

// splitURI cuts a request URI into path and raw query.
func splitURI(uri []byte) (path, query []byte) {
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		return uri[:i], uri[i+1:]
	}
	return uri, nil
}

// redactCommand rewrites every command= parameter of an exec/attach URI to
// command=REDACTED, appending the result to dst.
func redactCommand(dst, uri []byte) []byte {
	path, query := splitURI(uri)
	dst = append(dst, path...)
	if query == nil {
		return dst
	}
	dst = append(dst, '?')
	first := true
	for len(query) > 0 {
		var kv []byte
		kv, query = nextParam(query)
		if !first {
			dst = append(dst, '&')
		}
		first = false
		if bytes.HasPrefix(kv, []byte("command=")) {
			dst = append(dst, "command=REDACTED"...)
		} else {
			dst = append(dst, kv...)
		}
	}
	return dst
}

// splitUserAgent returns the product and version of the first product token of a
// User-Agent ("kubectl/v1.34.4 (linux/amd64) kubernetes/abc" -> kubectl, v1.34.4).
func splitUserAgent(ua []byte) (product, version []byte) {
	end := bytes.IndexByte(ua, ' ')
	if end < 0 {
		end = len(ua)
	}
	tok := ua[:end]
	if i := bytes.IndexByte(tok, '/'); i >= 0 {
		return tok[:i], tok[i+1:]
	}
	return tok, nil
}
