// Package embedui is the admin UI's templates and static files, embedded
// into the binary. It depends on no other Shoptrail package: engine/web
// renders the pages with the data they show.
package embedui

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"net/url"
	"time"
)

//go:embed templates/*.html
var templates embed.FS

//go:embed static
var static embed.FS

// Pages are the admin pages, each parsed with the layout.
var Pages = []string{"setup", "login", "dashboard", "users", "user", "products", "product", "settings", "install", "attribution", "attribution_orders", "email", "email_settings", "campaigns", "campaign", "campaign_report", "segments", "segment", "segment_edit", "email_campaigns", "email_campaign", "email_campaign_report", "email_automations", "email_templates", "email_template"}

// Parse parses every page at startup; a test executes each one. funcs adds
// to the template functions (the engine's: "money" formats minor units of a
// currency).
func Parse(funcs template.FuncMap) (map[string]*template.Template, error) {
	all := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.Local().Format("2 Jan 2006 15:04:05")
		},
		"thousands": thousands,
		"pct":       func(f float64) string { return fmt.Sprintf("%.1f %%", f*100) },
		"short":     func(s string) string { return clip(s, ShortURL) },
		"clip":      func(s string) string { return clip(s, TitleURL) },
		"list":      func(v ...string) []string { return v },
		"pathesc":   url.PathEscape,
		"dec":       func(n int) int { return n - 1 },
		"deref":     func(n *int64) int64 { return *n },
	}
	maps.Copy(all, funcs)
	out := map[string]*template.Template{}
	for _, p := range Pages {
		t, err := template.New("layout.html").Funcs(all).ParseFS(templates, "templates/layout.html", "templates/events.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("embedui: %s: %w", p, err)
		}
		out[p] = t
	}
	return out, nil
}

// How much of a tracked URL a table cell shows, and its tooltip: URLs come
// from shoppers' browsers and may be kilobytes long (an 8 KB URL made the
// dashboard 12 000 px tall). The CSS clamps the cell to three lines too.
const (
	ShortURL = 200  // characters in the cell
	TitleURL = 2000 // characters in the tooltip
)

// clip cuts s to at most n characters, marking the cut with "…".
func clip(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j] + "…"
		}
		i++
	}
	return s
}

// Static is the static files (CSS, images), served under /static/.
func Static() fs.FS {
	sub, _ := fs.Sub(static, "static")
	return sub
}

// thousands writes 12345678 as 12 345 678.
func thousands(n any) string {
	s := fmt.Sprint(n)
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, "\u202f"...) // a narrow no-break space
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
