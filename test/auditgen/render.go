package auditgen

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// render writes e as one JSON line, in the field order of the apiserver's log backend
// (the audit.k8s.io/v1 Event struct's order), into g.buf, which it returns.
func (g *gen) render(e *event) []byte {
	b := g.buf[:0]
	b = append(b, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"`...)
	b = append(b, e.level...)
	b = append(b, `","auditID":"`...)
	b = append(b, uuidString(g.rng.Uint64(), g.rng.Uint64())...)
	b = append(b, `","stage":"`...)
	b = append(b, e.stage...)
	b = append(b, `","requestURI":`...)
	b = appendString(b, e.uri())
	b = append(b, `,"verb":"`...)
	b = append(b, e.verb...)
	b = append(b, `","user":{`...)
	if e.user.name != "" {
		b = append(b, `"username":`...)
		b = appendString(b, e.user.name)
		if e.user.uid != "" {
			b = append(b, `,"uid":"`...)
			b = append(b, e.user.uid...)
			b = append(b, '"')
		}
		if len(e.user.groups) > 0 {
			b = append(b, `,"groups":[`...)
			for i, gr := range e.user.groups {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendString(b, gr)
			}
			b = append(b, ']')
		}
	}
	b = append(b, `},"sourceIPs":["`...)
	b = append(b, e.ip...)
	b = append(b, `"],"userAgent":`...)
	b = appendString(b, e.ua)
	if e.resource != "" {
		b = append(b, `,"objectRef":{"resource":"`...)
		b = append(b, e.resource...)
		b = append(b, '"')
		if e.ns != "" {
			b = append(b, `,"namespace":"`...)
			b = append(b, e.ns...)
			b = append(b, '"')
		}
		if e.name != "" {
			b = append(b, `,"name":`...)
			b = appendString(b, e.name)
		}
		if e.group != "" {
			b = append(b, `,"apiGroup":"`...)
			b = append(b, e.group...)
			b = append(b, '"')
		}
		b = append(b, `,"apiVersion":"`...)
		b = append(b, e.version...)
		b = append(b, '"')
		if e.sub != "" {
			b = append(b, `,"subresource":"`...)
			b = append(b, e.sub...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, `,"responseStatus":{"metadata":{}`...)
	if e.code >= 400 {
		b = append(b, `,"status":"Failure","message":`...)
		b = appendString(b, e.message)
		b = append(b, `,"reason":"`...)
		b = append(b, e.reason...)
		b = append(b, '"')
		if e.code != 401 && e.code != 429 && e.code != 500 && e.resource != "" {
			b = append(b, `,"details":{`...)
			if e.name != "" {
				b = append(b, `"name":`...)
				b = appendString(b, e.name)
				b = append(b, ',')
			}
			if e.group != "" {
				b = append(b, `"group":"`...)
				b = append(b, e.group...)
				b = append(b, `",`...)
			}
			b = append(b, `"kind":"`...)
			b = append(b, e.resource...)
			b = append(b, `"}`...)
		}
	}
	b = append(b, `,"code":`...)
	b = strconv.AppendInt(b, int64(e.code), 10)
	b = append(b, '}')
	if e.requestObject != "" {
		b = append(b, `,"requestObject":`...)
		b = append(b, e.requestObject...)
	}
	if e.responseObject != "" {
		b = append(b, `,"responseObject":`...)
		b = append(b, e.responseObject...)
	}
	b = append(b, `,"requestReceivedTimestamp":"`...)
	b = appendTime(b, e.recv)
	b = append(b, `","stageTimestamp":"`...)
	b = appendTime(b, e.done)
	b = append(b, '"')
	if e.decision != "" || len(e.extraAnn) > 0 {
		b = append(b, `,"annotations":{`...)
		first := true
		for _, kv := range e.extraAnn {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, kv[0])
			b = append(b, ':')
			b = appendString(b, kv[1])
		}
		if e.decision != "" {
			if !first {
				b = append(b, ',')
			}
			b = append(b, `"authorization.k8s.io/decision":"`...)
			b = append(b, e.decision...)
			b = append(b, `","authorization.k8s.io/reason":`...)
			b = appendString(b, e.authzReason)
		}
		b = append(b, '}')
	}
	b = append(b, "}\n"...)
	g.buf = b
	return b
}

// uri builds requestURI from the objectRef (or the non-resource path) and the query.
func (e *event) uri() string {
	if e.resource == "" {
		return e.path + e.query
	}
	u := "/api/v1"
	if e.group != "" {
		u = "/apis/" + e.group + "/" + e.version
	}
	if e.ns != "" {
		u += "/namespaces/" + e.ns
	}
	u += "/" + e.resource
	if e.name != "" {
		u += "/" + e.name
	}
	if e.sub != "" {
		u += "/" + e.sub
	}
	return u + e.query
}

// appendTime writes RFC 3339 with microseconds, as the apiserver's metav1.MicroTime.
func appendTime(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
}

// appendString writes s as a JSON string the way Go's encoding/json does (HTML
// characters escaped as \u00XX), which is how the apiserver's log lines look.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
