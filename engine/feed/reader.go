// Package feed reads a shop's product feed (CSV as real shops export it)
// into products, with a report of what it skipped and why, line by line.
package feed

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/shoptrail/shoptrail/engine/model"
)

// Report tells what an import did. The last one is kept and shown.
type Report struct {
	Source     string      `json:"source"`
	Started    time.Time   `json:"started"`
	Finished   time.Time   `json:"finished"`
	Format     string      `json:"format"` // the format recognised from the header (Format*)
	Encoding   string      `json:"encoding"`
	Delimiter  string      `json:"delimiter"`
	Columns    []string    `json:"columns"`            // "field ← header" for each mapped column
	Attributes []string    `json:"attributes"`         // header names kept as attributes
	Rows       int         `json:"rows"`               // data rows read
	Imported   int         `json:"imported"`           // products stored
	Variations int         `json:"variations"`         // of which variations
	Unlisted   int         `json:"unlisted"`           // of which hidden or not published: stored, never shown in search or recommendations
	NoURL      int         `json:"no_url"`             // of which have no product URL
	Removed    int         `json:"removed"`            // earlier products missing from this feed
	Skipped    int         `json:"skipped"`            // rows not imported
	Warnings   []string    `json:"warnings,omitempty"` // about the import as a whole
	Errors     []LineError `json:"errors"`             // the first MaxErrors problems
	Failure    string      `json:"failure,omitempty"`  // why the import as a whole failed
}

// LineError is a row that was skipped, or a field that was ignored.
type LineError struct {
	Line    int    `json:"line"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// MaxErrors bounds Report.Errors.
const MaxErrors = 1000

func (r *Report) skip(line int, field, msg string) {
	r.Skipped++
	r.note(line, field, msg)
}

func (r *Report) note(line int, field, msg string) {
	if len(r.Errors) < MaxErrors {
		r.Errors = append(r.Errors, LineError{line, field, msg})
	}
}

// Note records a problem of a line that did not skip it.
func (r *Report) Note(line int, field, msg string) { r.note(line, field, msg) }

// Finish adds the warnings about the import as a whole, once every product
// is stored: products without a URL.
func (r *Report) Finish(urlTemplate string) {
	if r.NoURL == 0 {
		return
	}
	w := fmt.Sprintf("%d of the %d products have no URL, so recommendations and email blocks cannot link to them", r.NoURL, r.Imported)
	if urlTemplate == "" {
		w += `: set [feed] product_url_template, e.g. "https://shop.example/products/{handle}"`
	} else {
		w += fmt.Sprintf(": [feed] product_url_template %q needs a {handle} or {sku} they lack", urlTemplate)
	}
	r.Warnings = append(r.Warnings, w)
}

// ErrNoID means the feed has no column the importer recognises as the ID.
var ErrNoID = errors.New("feed: no ID column")

// Limits.
const (
	maxIDLen    = 128
	maxCellLen  = 64 << 10
	sniffBytes  = 1 << 20
	defCurrency = "EUR"
)

// Options changes how a feed is read.
type Options struct {
	// Columns maps canonical fields to header names for feeds whose names
	// the importer does not recognise ([feed.columns]).
	Columns map[string]string
	// URLTemplate makes the URL of products that have none ([feed]
	// product_url_template): {handle}, {id} and {sku} are replaced.
	URLTemplate string
	// Now is the time a scheduled sale is compared with (WooCommerce's
	// "Date sale price starts" and "ends"); time.Now when nil.
	Now func() time.Time
}

// Read parses a CSV feed and calls fn for every valid product, in file
// order. columns maps canonical fields to header names for feeds whose
// names the importer does not recognise ([feed.columns]).
func Read(r io.Reader, columns map[string]string, rep *Report, fn func(model.Product) error) error {
	_, err := ReadWith(r, Options{Columns: columns}, rep, fn)
	return err
}

// ReadWith parses a CSV feed with options and calls fn for every valid
// product, in file order. Some products may still name their main product
// (or a grouped product its children) by a reference that only the whole
// file resolves: a WooCommerce variation may come before its parent and
// name it by SKU. The Links it returns resolve them; Links.Pending says
// whether any product needs it.
func ReadWith(r io.Reader, o Options, rep *Report, fn func(model.Product) error) (*Links, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(sniffBytes)
	head = bytes.TrimPrefix(head, []byte("\ufeff"))
	if bytes.HasPrefix(mustPeek(br, 3), []byte("\ufeff")) {
		br.Discard(3) // a UTF-8 byte order mark (WooCommerce, Excel)
	}
	var in io.Reader = br
	rep.Encoding = "UTF-8"
	if !utf8.Valid(trimPartialRune(head)) {
		in = charmap.Windows1252.NewDecoder().Reader(br)
		rep.Encoding = "Windows-1252"
		head, _ = charmap.Windows1252.NewDecoder().Bytes(head)
	}
	delim := sniffDelimiter(head)
	rep.Delimiter = string(delim)
	cr := csv.NewReader(in)
	cr.Comma = delim
	// RFC 4180: a stray quote is an error of that row, reported with its
	// line, not a quoted field that swallows the rest of the file.
	cr.LazyQuotes = false
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("feed: the file is empty")
	}
	if err != nil {
		return nil, fmt.Errorf("feed: header: %w", err)
	}
	rd := newReader(header, o, rep, fn)
	if err := rd.checkHeader(); err != nil {
		return nil, err
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				rep.Rows++
				rep.skip(pe.StartLine, "", pe.Err.Error())
				continue
			}
			return nil, fmt.Errorf("feed: %w", err)
		}
		line, _ := cr.FieldPos(0) // only valid for a record read without error
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		rep.Rows++
		if err := rd.row(rec, line); err != nil {
			return nil, err
		}
	}
	if err := rd.end(); err != nil {
		return nil, err
	}
	return rd.links, nil
}

func mustPeek(br *bufio.Reader, n int) []byte {
	b, _ := br.Peek(n)
	return b
}

// trimPartialRune drops an incomplete UTF-8 sequence cut off at the end.
func trimPartialRune(b []byte) []byte {
	for i := 0; i < 3 && len(b) > 0; i++ {
		r, size := utf8.DecodeLastRune(b)
		if r != utf8.RuneError || size != 1 {
			break
		}
		if utf8.RuneStart(b[len(b)-1]) || b[len(b)-1] >= 0x80 {
			b = b[:len(b)-1]
			continue
		}
		break
	}
	return b
}

// sniffDelimiter picks the delimiter that the header line uses most:
// ; , tab or |, outside quotes.
func sniffDelimiter(head []byte) rune {
	counts := map[rune]int{}
	inQuotes := false
	for _, c := range string(head) {
		if c == '"' {
			inQuotes = !inQuotes
		}
		if c == '\n' && !inQuotes {
			break
		}
		if !inQuotes {
			switch c {
			case ';', ',', '\t', '|':
				counts[c]++
			}
		}
	}
	best, n := ',', 0
	for _, c := range []rune{';', '\t', '|', ','} {
		if counts[c] > n {
			best, n = c, counts[c]
		}
	}
	return best
}

// clean trims a cell and removes the ' that exporters put before a leading
// = + - @ to defuse spreadsheet formulas.
func clean(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 1 && s[0] == '\'' && strings.ContainsRune("=+-@", rune(s[1])) {
		s = s[1:]
	}
	if len(s) > maxCellLen {
		s = s[:maxCellLen]
	}
	return s
}

// list splits a list cell on | when it has one, else on commas.
func list(s string) []string {
	if s == "" {
		return nil
	}
	sep := ","
	if strings.Contains(s, "|") {
		sep = "|"
	}
	var out []string
	for _, v := range strings.Split(s, sep) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// checkURLs returns the field and the problem of the first product or
// photo URL that is not a web address; msg is "" when all are. A link with a script scheme
// (javascript:, vbscript:) or data: runs or shows content of the feed's
// choosing wherever the product is rendered; such a row is skipped, never
// stored.
func checkURLs(p model.Product) (field, msg string) {
	if scheme, ok := webURL(p.URL); !ok {
		return FieldURL, fmt.Sprintf("the product URL must be an http or https address, not %s:", scheme)
	}
	for i, ph := range p.Photos {
		if scheme, ok := webURL(ph); !ok {
			return FieldPhotos, fmt.Sprintf("photo %d must be an http or https address, not %s:", i+1, scheme)
		}
	}
	return "", ""
}

// webURL reports whether u is http(s), or has no scheme at all (a path or
// "//host/..."), reading it as a browser does: tabs and newlines anywhere
// and leading control characters and spaces are ignored, the scheme's case
// too ("  JaVa\tScRiPt:" is javascript:). It returns the scheme it found.
func webURL(u string) (string, bool) {
	u = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, u)
	u = strings.TrimLeftFunc(u, func(r rune) bool { return r <= ' ' || r == '\u00a0' || r == '\ufeff' })
	colon := strings.IndexByte(u, ':')
	if colon <= 0 {
		return "", true
	}
	scheme := strings.ToLower(u[:colon])
	for i, r := range scheme {
		letter := r >= 'a' && r <= 'z'
		if !(letter || (i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'))) {
			return "", true // the colon is not a scheme's: a path such as "/a:b" or "?x=1:2"
		}
	}
	return scheme, scheme == "http" || scheme == "https"
}

// photos splits a list of image URLs on |, commas or spaces.
func photos(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '|' || r == ',' || r == ' ' || r == '\n' })
}

var (
	currencyCode = regexp.MustCompile(`[A-Za-z]{3}`)
	symbols      = map[string]string{"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "zł": "PLN", "kr": "SEK", "CHF": "CHF"}
)

// parsePrice reads 12.50, 12,50, 1.234,56, 1,234.56, 15.00 EUR, €12.50
// into minor units and a currency ("" when the cell names none).
func parsePrice(s string) (int64, string, error) {
	orig := s
	cur := ""
	if m := currencyCode.FindString(s); m != "" {
		cur = strings.ToUpper(m)
		s = strings.Replace(s, m, "", 1)
	}
	for sym, code := range symbols {
		if strings.Contains(s, sym) {
			s = strings.ReplaceAll(s, sym, "")
			if cur == "" {
				cur = code
			}
		}
	}
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	s = strings.ReplaceAll(s, "\u00a0", "")
	dot, comma := strings.LastIndexByte(s, '.'), strings.LastIndexByte(s, ',')
	switch {
	case comma > dot: // 1.234,56 or 12,50: the comma is the decimal separator
		s = strings.ReplaceAll(s, ".", "")
		s = strings.Replace(s, ",", ".", 1)
	case comma >= 0: // 1,234.56
		s = strings.ReplaceAll(s, ",", "")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1e12 {
		return 0, "", fmt.Errorf("price %q is not an amount like 12.50, 12,50 or 15.00 EUR", orig)
	}
	return int64(math.Round(v * 100)), cur, nil
}

func isYes(s string) bool {
	switch strings.ToLower(s) {
	case "1", "yes", "y", "true":
		return true
	}
	return false
}

func isNo(s string) bool {
	switch strings.ToLower(s) {
	case "0", "no", "n", "false":
		return true
	}
	return false
}
