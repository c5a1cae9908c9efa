// Package redact masks secrets in URLs before they reach a report, a page or
// a log: feed URLs often carry a token in their query or credentials in
// their userinfo, and Go's HTTP client repeats the whole URL in its errors.
// Every URL shown to anyone goes through URL, every error through Error.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces every secret part.
const Mask = "***"

// URL masks a URL's userinfo and every query value (names stay, so the
// shape of the URL is still recognisable). A URL that does not parse is
// not shown at all.
func URL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "(invalid URL)"
	}
	hadUser := u.User != nil
	u.User = nil
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery = maskQuery(u.RawQuery)
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = Mask, ""
	}
	out := u.String()
	if hadUser {
		if scheme, rest, ok := strings.Cut(out, "://"); ok {
			out = scheme + "://" + Mask + "@" + rest
		}
	}
	return out
}

// maskQuery keeps the names of a query in their order and masks the
// values; it works on the raw text so that even an unparsable query
// shows no value.
func maskQuery(raw string) string {
	parts := strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' })
	for i, p := range parts {
		name, _, _ := strings.Cut(p, "=")
		parts[i] = name + "=" + Mask
	}
	return strings.Join(parts, "&")
}

// urlInText finds URLs inside free text such as an error message: a scheme,
// "://", and everything up to a space or a quote.
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.\-]*://[^\s"'<>` + "`" + `]+`)

// Text masks every URL found in s.
func Text(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, URL)
}

// Error is err's message with every URL in it masked; "" for nil.
func Error(err error) string {
	if err == nil {
		return ""
	}
	return Text(err.Error())
}
