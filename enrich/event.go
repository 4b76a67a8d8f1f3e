package enrich

import (
	"bytes"
	"errors"

	"github.com/valyala/fastjson"
)

// top holds the top-level fields of one audit event. The values derive reads are
// views of their msgpack (written by enrich/jsonmp, see mpv); the tree is there only
// on the parser's path (o, requestObject and responseObject: what modify changes).
type top struct {
	o                                                  *fastjson.Object
	auditID, stage, verb, requestURI, userAgent, level []byte
	user, impersonated, objectRef, responseStatus      mpv
	sourceIPs, annotations                             mpv
	requestObject, responseObject                      *fastjson.Value
	received, stageTS, legacyTS, creation              []byte
}

// set records the top-level field k if derive reads it; false for any other key.
func (t *top) set(k []byte, v mpv) bool {
	switch string(k) {
	case "auditID":
		t.auditID = v.str()
	case "stage":
		t.stage = v.str()
	case "verb":
		t.verb = v.str()
	case "requestURI":
		t.requestURI = v.str()
	case "userAgent":
		t.userAgent = v.str()
	case "level":
		t.level = v.str()
	case "user":
		t.user = v
	case "impersonatedUser":
		t.impersonated = v
	case "objectRef":
		t.objectRef = v
	case "responseStatus":
		t.responseStatus = v
	case "sourceIPs":
		t.sourceIPs = v
	case "annotations":
		t.annotations = v
	case "requestReceivedTimestamp":
		t.received = v.str()
	case "stageTimestamp":
		t.stageTS = v.str()
	case "timestamp": // v1beta1
		t.legacyTS = v.str()
	case "metadata": // v1beta1 events carry ObjectMeta
		t.creation = v.get("creationTimestamp").str()
	default:
		return false
	}
	return true
}

// derived are the fields computed from one event.
type derived struct {
	durationMs                             float64
	hasDuration, negative, longRunning     bool
	outcome, userType                      string
	code                                   int64
	authzDecision, authzReason             []byte
	username                               []byte
	saNamespace, saName, nodeName          []byte
	tokenPodName, tokenPodUID, tokenNode   []byte
	credentialID                           []byte
	impersonatedUser, effectiveUser        []byte
	clientIP, peerIP                       []byte
	uaProduct, uaVersion                   []byte
	groupResource                          []byte
	namespace, resource, name, subresource []byte
	apiGroup, apiVersion, requestPath      []byte
	fromURI                                bool // no objectRef: the object comes from the URI
	nonResourceURL                         []byte
	deprecated                             bool
	removedRelease                         []byte
	nLatency, nPSA                         int
	truncation                             []string
	time                                   Time
	received, stageTime                    Time
}

var errNoAuditID = errors.New("not an audit event: auditID is not a string")

// event enriches one audit event parsed by fastjson (a batch item, an envelope's
// event, a map record, a text the one-pass writer left to the parser) and appends its
// record to res (or counts it dropped).
func (w *Worker) event(ev *fastjson.Value, ctx inputCtx, res *Result) error {
	var t top
	t.o, _ = ev.Object()
	o := &w.e.opts
	t.o.Visit(func(k []byte, v *fastjson.Value) {
		switch string(k) {
		case "requestObject":
			t.requestObject = v
		case "responseObject":
			t.responseObject = v
		}
	})
	start, keys := len(w.buf.b), len(w.keys)
	w.badNum = false
	// Direct: nothing to modify, so the record's own fields are written now and derive
	// reads them there. Otherwise derive reads a copy of the fields it needs (scratch,
	// kept for the whole call: summaries view it), modify changes the tree, and the
	// fields are written after.
	direct := !o.SummaryOnly && t.requestObject == nil && t.responseObject == nil &&
		!o.RedactExecCommand && len(w.e.redactPaths) == 0
	if direct {
		w.encodeOwn(&t, ctx, true)
	} else {
		t.o.Visit(func(k []byte, v *fastjson.Value) {
			if !t.set(k, nil) { // not a field derive reads (requestObject among them)
				return
			}
			at := len(w.scratch.b)
			w.encodeValue(&w.scratch, v, 0)
			t.set(k, w.scratch.b[at:])
		})
	}
	if len(t.auditID) == 0 {
		w.buf.b, w.keys = w.buf.b[:start], w.keys[:keys]
		return errNoAuditID
	}
	d := &w.d
	w.derive(&t, ctx)
	if w.dropped(&t) {
		w.buf.b, w.keys = w.buf.b[:start], w.keys[:keys]
		res.Dropped++
		return nil
	}
	if !direct {
		w.modify(&t, ctx)
		w.badNum = false
		if !o.SummaryOnly {
			w.encodeOwn(&t, ctx, false)
		}
	} else {
		w.redact = w.redact[:0]
	}
	if w.badNum {
		w.buf.b, w.keys = w.buf.b[:start], w.keys[:keys]
		return w.badNumberError()
	}
	w.finishRecord(&t, d, ctx, start, keys)
	res.Records = w.records
	return nil
}

// str returns a string value's bytes, nil for anything else.
func str(v *fastjson.Value) []byte {
	if v == nil || v.Type() != fastjson.TypeString {
		return nil
	}
	b, _ := v.StringBytes()
	return b
}

func (w *Worker) derive(t *top, ctx inputCtx) {
	d := &w.d
	*d = derived{truncation: d.truncation[:0]}

	// When: the record time and the request's duration.
	received, okR := parseTime(t.received)
	stage, okS := parseTime(t.stageTS)
	d.received, d.stageTime = received, stage
	if !okR {
		d.received = firstTime(t.legacyTS)
	}
	if okR && okS {
		d.durationMs = stage.sub(received)
		d.hasDuration = true
		d.negative = d.durationMs < 0
	}
	switch w.e.opts.TimeSource {
	case TimeRequestReceived:
		if d.time = received; !okR {
			d.time = firstTime(t.legacyTS, t.stageTS, t.creation)
		}
	case TimeStage:
		if d.time = stage; !okS {
			d.time = firstTime(t.received, t.legacyTS, t.creation)
		}
	}

	// What: the object, from objectRef or else from the URI.
	uriPath, rawQuery := splitURI(t.requestURI)
	d.requestPath = uriPath
	w.query.parse(rawQuery)
	if _, _, ok := t.objectRef.entries(true); ok {
		t.objectRef.visit(func(k []byte, v mpv) {
			switch string(k) {
			case "namespace":
				d.namespace = v.str()
			case "resource":
				d.resource = v.str()
			case "name":
				d.name = v.str()
			case "subresource":
				d.subresource = v.str()
			case "apiGroup":
				d.apiGroup = v.str()
			case "apiVersion":
				d.apiVersion = v.str()
			}
		})
	} else if rt := parseRequestPath(uriPath); rt.isResource {
		d.namespace, d.resource, d.name, d.subresource = rt.namespace, rt.resource, rt.name, rt.sub
		d.apiGroup, d.apiVersion = rt.apiGroup, rt.apiVersion
		d.fromURI = true
	}
	if len(d.resource) > 0 {
		gr := w.strs
		start := len(gr)
		gr = append(gr, d.resource...)
		if len(d.apiGroup) > 0 {
			gr = append(gr, '.')
			gr = append(gr, d.apiGroup...)
		}
		if len(d.subresource) > 0 {
			gr = append(gr, '/')
			gr = append(gr, d.subresource...)
		}
		w.strs = gr
		d.groupResource = gr[start:len(gr):len(gr)]
	} else {
		d.nonResourceURL = uriPath
	}

	// Who.
	username := t.user.get("username").str()
	d.username = username
	d.userType = userType(username)
	switch d.userType {
	case "serviceaccount":
		rest := username[len(saPrefix):]
		if i := bytes.IndexByte(rest, ':'); i >= 0 {
			d.saNamespace, d.saName = rest[:i], rest[i+1:]
		}
	case "node":
		d.nodeName = username[len(nodePrefix):]
	}
	if extra := t.user.get("extra"); extra != nil {
		d.tokenPodName = firstString(extra.get("authentication.kubernetes.io/pod-name"))
		d.tokenPodUID = firstString(extra.get("authentication.kubernetes.io/pod-uid"))
		d.tokenNode = firstString(extra.get("authentication.kubernetes.io/node-name"))
		d.credentialID = firstString(extra.get("authentication.kubernetes.io/credential-id"))
	}
	d.effectiveUser = username
	if iu := t.impersonated.get("username").str(); len(iu) > 0 {
		d.impersonatedUser, d.effectiveUser = iu, iu
	}

	// From where: sourceIPs lists X-Forwarded-For entries first, the peer last.
	first := true
	t.sourceIPs.items(func(ip mpv) {
		if first {
			d.clientIP, first = ip.str(), false
		}
		d.peerIP = ip.str()
	})
	d.uaProduct, d.uaVersion = splitUserAgent(t.userAgent)

	// Why and how it ended.
	d.code = t.responseStatus.get("code").int64()
	w.scanAnnotations(t.annotations)
	if ctx.cloudwatch {
		d.truncation = append(d.truncation, "cloudwatch")
	}
	if string(str(t.requestObject)) == aksPlaceholder || string(str(t.responseObject)) == aksPlaceholder {
		d.truncation = append(d.truncation, "aks")
	}
	d.outcome = outcome(t.stage, d.code, d.authzDecision)
	d.longRunning = w.longRunning(t, d)
}

// aksPlaceholder is what AKS writes instead of a requestObject or responseObject too
// large for its diagnostic logs.
const aksPlaceholder = "skipped-too-big-size-object"

const (
	saPrefix   = "system:serviceaccount:"
	nodePrefix = "system:node:"
)

// userType classifies the authenticated user by the names Kubernetes reserves. A
// request whose authentication failed (401) has no user name at all.
func userType(u []byte) string {
	switch {
	case len(u) == 0:
		return "unauthenticated"
	case bytes.HasPrefix(u, []byte(saPrefix)):
		return "serviceaccount"
	case bytes.HasPrefix(u, []byte(nodePrefix)):
		return "node"
	case string(u) == "system:anonymous":
		return "anonymous"
	case bytes.HasPrefix(u, []byte("system:")):
		return "system"
	}
	return "user"
}

// outcome says whether the request succeeded: a 1xx-3xx status is success, 4xx/5xx
// and the Panic stage are failure, an authorizer's "forbid" is failure even before a
// status exists; with neither (RequestReceived) the outcome is unknown.
func outcome(stage []byte, code int64, decision []byte) string {
	switch {
	case string(stage) == "Panic":
		return "failure"
	case code >= 400 || (code > 0 && code < 100):
		return "failure"
	case code > 0:
		return "success"
	case string(decision) == "forbid":
		return "failure"
	}
	return "unknown"
}

// longRunning marks the requests the apiserver holds open (its longRunningRequestCheck):
// their duration says how long a stream lived, not how slow the server was.
func (w *Worker) longRunning(t *top, d *derived) bool {
	switch string(d.subresource) {
	case "exec", "attach", "portforward", "proxy":
		return true
	case "log":
		if w.query.follow {
			return true
		}
	}
	// The apiserver also writes a failed authentication (401) at stage ResponseStarted,
	// for any request: only a stage ResponseStarted that did not fail is a stream.
	started := string(t.stage) == "ResponseStarted" && d.code < 400
	return string(t.verb) == "watch" || w.query.watch || started || d.code == 101
}

// array returns the items of an array value, nil for anything else (or nil).
func array(v *fastjson.Value) []*fastjson.Value {
	if v == nil || v.Type() != fastjson.TypeArray {
		return nil
	}
	a, _ := v.Array()
	return a
}

// object returns an object value's fields, nil for anything else (or nil).
func object(v *fastjson.Value) *fastjson.Object {
	if v == nil || v.Type() != fastjson.TypeObject {
		return nil
	}
	o, _ := v.Object()
	return o
}

// firstTime returns the first of the timestamps that parses.
func firstTime(candidates ...[]byte) Time {
	for _, c := range candidates {
		if t, ok := parseTime(c); ok {
			return t
		}
	}
	return Time{}
}

// firstString returns a string, or the first element of a string array (user.extra
// values).
func firstString(v mpv) []byte {
	if s := v.str(); s != nil {
		return s
	}
	var first []byte
	done := false
	v.items(func(item mpv) {
		if !done {
			first, done = item.str(), true
		}
	})
	return first
}

// dropped applies the Keep and Drop rules.
func (w *Worker) dropped(t *top) bool {
	o := &w.e.opts
	if o.Keep.Empty() && o.Drop.Empty() {
		return false
	}
	d := &w.d
	f := Facts{
		Stage:          b2s(t.stage),
		Verb:           b2s(t.verb),
		User:           b2s(d.username),
		GroupResource:  b2s(d.groupResource),
		Namespace:      b2s(d.namespace),
		Name:           b2s(d.name),
		NonResourceURL: b2s(d.nonResourceURL),
		UserType:       d.userType,
		Code:           int(d.code),
	}
	var local [8]string
	gs := local[:0]
	t.user.get("groups").items(func(g mpv) { gs = append(gs, b2s(g.str())) })
	if len(gs) > 0 {
		f.Groups = gs
	}
	if !o.Keep.Empty() && !o.Keep.Match(&f) {
		return true
	}
	return o.Drop.Match(&f)
}
