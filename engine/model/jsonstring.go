package model

// AppendJSONString appends s as a JSON string, escaped exactly as
// encoding/json escapes it (<, >, & and U+2028/U+2029 too), for the hot
// paths that write their answers without reflection.
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }
