package enrich

// repairJSON closes a JSON document that was cut short (CloudWatch Logs cuts events
// at 256 KiB and appends "[Truncated...]"). It keeps every complete value before the
// cut, drops the partial one and closes the open objects and arrays, so that the
// identity, verb, URI and whatever else came early in the event are not lost. The
// apiserver writes requestObject/responseObject before the timestamps and annotations,
// so those usually go with the cut: the record is flagged truncated.
func repairJSON(dst, src []byte) []byte {
	var stack []byte // open containers: '{' or '['
	var safeStack []byte
	safe := 0 // src[:safe] followed by closers for safeStack is valid JSON
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
			safe, safeStack = i+1, append(safeStack[:0], stack...)
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			if len(stack) == 0 {
				return append(dst, src[:i+1]...) // complete after all
			}
		case ',':
			safe, safeStack = i, append(safeStack[:0], stack...)
		}
	}
	dst = append(dst, src[:safe]...)
	for i := len(safeStack) - 1; i >= 0; i-- {
		if safeStack[i] == '{' {
			dst = append(dst, '}')
		} else {
			dst = append(dst, ']')
		}
	}
	return dst
}
