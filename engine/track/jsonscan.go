package track

import "fmt"

// checkShape walks a JSON value that the decoder has already validated and
// enforces the documented limits on nesting, string length and array length
// without decoding it.
func checkShape(raw []byte, maxDepth, maxString, maxArray int) error {
	type frame struct {
		array bool
		n     int // commas seen: entries - 1
	}
	var stack []frame
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '"':
			start := i
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
			if i-start-1 > maxString {
				return fmt.Errorf("a string is longer than %d bytes", maxString)
			}
		case '[', '{':
			stack = append(stack, frame{array: c == '['})
			if len(stack) > maxDepth {
				return fmt.Errorf("nested deeper than %d levels", maxDepth)
			}
		case ']', '}':
			stack = stack[:len(stack)-1]
		case ',':
			if top := len(stack) - 1; top >= 0 && stack[top].array {
				stack[top].n++
				if stack[top].n >= maxArray {
					return fmt.Errorf("an array has more than %d entries", maxArray)
				}
			}
		}
	}
	return nil
}
