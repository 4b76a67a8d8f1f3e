package enrich

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/valyala/fastjson"
)

const redactedValue = "[REDACTED]"

// modify applies, in place on the parsed tree, what the options ask before encoding:
// managedFields removal, redaction, then the object size limit (so that the size is
// that of what would be written).
func (w *Worker) modify(t *top, ctx inputCtx) {
	o := &w.e.opts
	w.redact = w.redact[:0]
	if o.SummaryOnly {
		// No record is written: only what Summary shows (the request URI) matters.
		if o.RedactExecCommand && w.query.hasCommand {
			w.redactExecCommand(t)
		}
		return
	}
	if t.requestObject == nil && t.responseObject == nil && !o.RedactExecCommand && len(w.e.redactPaths) == 0 {
		return // Metadata-level events: nothing to do
	}
	if o.DropManagedFields {
		dropManagedFields(t.requestObject)
		dropManagedFields(t.responseObject)
	}
	if o.Redact {
		w.redactBuiltin(t)
	}
	if o.RedactExecCommand && w.query.hasCommand {
		w.redactExecCommand(t)
	}
	for _, p := range w.e.redactPaths {
		w.redactPath(t.o, p, 0, p[0])
	}
	if o.MaxObjectSize > 0 && ctx.size > o.MaxObjectSize {
		w.limitSize(t, "requestObject", t.requestObject)
		w.limitSize(t, "responseObject", t.responseObject)
	}
}

// dropManagedFields removes metadata.managedFields from an object or from every item
// of a list: it is server-side-apply bookkeeping, often larger than the object itself.
func dropManagedFields(v *fastjson.Value) {
	if md := object(v.Get("metadata")); md != nil {
		md.Del("managedFields")
	}
	for _, it := range array(v.Get("items")) {
		if md := object(it.Get("metadata")); md != nil {
			md.Del("managedFields")
		}
	}
}

// redactBuiltin hides the credentials that audit logs are known to leak: Secret
// contents (also in lists, in patches and in kubectl's last-applied annotation), the
// token a TokenRequest returns and the token a TokenReview carries.
func (w *Worker) redactBuiltin(t *top) {
	d := &w.d
	secrets := string(d.resource) == "secrets" && len(d.apiGroup) == 0
	for _, side := range [2]struct {
		name string
		v    *fastjson.Value
	}{{"requestObject", t.requestObject}, {"responseObject", t.responseObject}} {
		if side.v == nil {
			continue
		}
		kind := string(side.v.GetStringBytes("kind"))
		if secrets || kind == "Secret" || kind == "SecretList" {
			w.redactSecret(side.name, side.v)
		}
	}
	switch {
	case string(d.resource) == "serviceaccounts" && string(d.subresource) == "token":
		w.redactKey(t.responseObject.Get("status"), "token", "responseObject.status.token")
	case string(d.resource) == "tokenreviews":
		w.redactKey(t.requestObject.Get("spec"), "token", "requestObject.spec.token")
		w.redactKey(t.responseObject.Get("spec"), "token", "responseObject.spec.token")
	}
}

// redactExecCommand hides the command= parameters of exec and attach URIs, which can
// carry credentials typed on a command line.
func (w *Worker) redactExecCommand(t *top) {
	switch string(w.d.subresource) {
	case "exec", "attach":
		start := len(w.strs)
		w.strs = redactCommand(w.strs, t.requestURI)
		t.requestURI = w.strs[start:len(w.strs):len(w.strs)]
		t.o.Set("requestURI", w.arena.NewStringBytes(t.requestURI))
		w.noteRedacted("requestURI.command")
	}
}

// redactSecret hides data, stringData and the last-applied annotation of a Secret, a
// SecretList's items, or a JSON patch's values aimed at them. Keys stay visible: which
// keys changed is often what an investigation needs.
func (w *Worker) redactSecret(prefix string, v *fastjson.Value) {
	switch v.Type() {
	case fastjson.TypeObject:
		w.redactValues(v.Get("data"), prefix+".data")
		w.redactValues(v.Get("stringData"), prefix+".stringData")
		w.redactKey(v.Get("metadata", "annotations"), lastApplied, prefix+".metadata.annotations")
		for _, it := range array(v.Get("items")) {
			w.redactValues(it.Get("data"), prefix+".items.data")
			w.redactValues(it.Get("stringData"), prefix+".items.stringData")
			w.redactKey(it.Get("metadata", "annotations"), lastApplied, prefix+".items.metadata.annotations")
		}
	case fastjson.TypeArray: // JSON patch: [{"op":"add","path":"/data/x","value":"..."}]
		for _, op := range array(v) {
			p := op.GetStringBytes("path")
			if bytes.HasPrefix(p, []byte("/data")) || bytes.HasPrefix(p, []byte("/stringData")) ||
				bytes.HasPrefix(p, []byte("/metadata/annotations")) {
				w.redactKey(op, "value", prefix+".value")
			}
		}
	}
}

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// redactValues replaces every value of an object, keeping its keys.
func (w *Worker) redactValues(v *fastjson.Value, path string) {
	o := object(v)
	if o == nil || o.Len() == 0 {
		return
	}
	marker := w.arena.NewString(redactedValue)
	o.Visit(func(_ []byte, item *fastjson.Value) {
		*item = *marker
	})
	w.noteRedacted(path)
}

// redactKey replaces the value under key, if there is one.
func (w *Worker) redactKey(v *fastjson.Value, key, path string) {
	o := object(v)
	if o == nil || o.Get(key) == nil {
		return
	}
	o.Set(key, w.arena.NewString(redactedValue))
	w.noteRedacted(path)
}

// redactPath follows a user-given path; "*" visits every key or item.
func (w *Worker) redactPath(o *fastjson.Object, path []string, depth int, shown string) {
	if o == nil {
		return
	}
	elem := path[depth]
	last := depth == len(path)-1
	visit := func(k string, v *fastjson.Value) {
		if last {
			o.Set(k, w.arena.NewString(redactedValue))
			w.noteRedacted(shown)
			return
		}
		next := path[depth+1]
		switch v.Type() {
		case fastjson.TypeObject:
			sub, _ := v.Object()
			w.redactPath(sub, path, depth+1, shown+"."+next)
		case fastjson.TypeArray:
			for _, it := range array(v) {
				sub := object(it)
				w.redactPath(sub, path, depth+1, shown+"."+next)
			}
		}
	}
	if elem == "*" {
		var keys []string
		o.Visit(func(k []byte, _ *fastjson.Value) { keys = append(keys, string(k)) })
		for _, k := range keys {
			visit(k, o.Get(k))
		}
		return
	}
	if v := o.Get(elem); v != nil {
		visit(elem, v)
	}
}

func (w *Worker) noteRedacted(path string) {
	for _, p := range w.redact {
		if p == path {
			return
		}
	}
	w.redact = append(w.redact, path)
}

// limitSize replaces an object whose JSON is larger than MaxObjectSize by a marker
// that says how large it was. The event itself is always kept.
func (w *Worker) limitSize(t *top, name string, v *fastjson.Value) {
	if v == nil {
		return
	}
	w.sizeBuf = v.MarshalTo(w.sizeBuf[:0])
	n := len(w.sizeBuf)
	if n <= w.e.opts.MaxObjectSize {
		return
	}
	marker := w.arena.NewObject()
	marker.Set("truncated", w.arena.NewTrue())
	marker.Set("size_bytes", w.arena.NewNumberInt(n))
	t.o.Set(name, marker)
	if name == "requestObject" {
		t.requestObject = nil
	} else {
		t.responseObject = nil
	}
	d := &w.d
	for _, r := range d.truncation {
		if r == "max_object_size" {
			return
		}
	}
	d.truncation = append(d.truncation, "max_object_size")
}

// splitPath validates a user redaction path such as "requestObject.spec.password".
func splitPath(p string) ([]string, error) {
	parts := strings.Split(strings.TrimSpace(p), ".")
	for _, s := range parts {
		if s == "" {
			return nil, fmt.Errorf("redact path %q has an empty element", p)
		}
	}
	return parts, nil
}
