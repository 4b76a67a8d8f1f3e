package enrich

// repairJSON closes a JSON document that was cut short (CloudWatch Logs cuts events
// at 256 KiB and appends "[Truncated...]"). It keeps every complete value before the
// cut, drops the partial one and closes the open objects and arrays, so that the
// identity, verb, URI and whatever else came early in the event are not lost. The
// apiserver writes requestObject/responseObject before the timestamps and annotations,
// so those usually go with the cut: the record is flagged truncated.
//
// It is linear in len(src): a safe point (src[:safe] followed by the closers of the
// open containers is valid JSON, if src was) comes right after every change of the
// stack of open containers ('{', '[', '}', ']') and at every ',' outside strings, so the
// stack at the last safe point is always the stack at the end: nothing is copied per
// safe point.
func repairJSON(dst, src []byte) []byte {
	var stack []byte // open containers: '{' or '['
	safe := 0
	inString, escaped := false, false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			stack = append(stack, c)
			safe = i + 1
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			if len(stack) == 0 {
				return append(dst, src[:i+1]...) // complete after all
			}
			safe = i + 1 // a container just ended: a complete value
		case ',':
			safe = i
		}
	}
	dst = append(dst, src[:safe]...)
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i] == '{' {
			dst = append(dst, '}')
		} else {
			dst = append(dst, ']')
		}
	}
	return dst
}
