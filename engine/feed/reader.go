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
	Encoding   string      `json:"encoding"`
	Delimiter  string      `json:"delimiter"`
	Columns    []string    `json:"columns"`           // "field ← header" for each mapped column
	Attributes []string    `json:"attributes"`        // header names kept as attributes
	Rows       int         `json:"rows"`              // data rows read
	Imported   int         `json:"imported"`          // products stored
	Variations int         `json:"variations"`        // of which variations
	Removed    int         `json:"removed"`           // earlier products missing from this feed
	Skipped    int         `json:"skipped"`           // rows not imported
	Errors     []LineError `json:"errors"`            // the first MaxErrors problems
	Failure    string      `json:"failure,omitempty"` // why the import as a whole failed
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

// ErrNoID means the feed has no column the importer recognises as the ID.
var ErrNoID = errors.New("feed: no ID column")

// Limits.
const (
	maxIDLen    = 128
	maxCellLen  = 64 << 10
	sniffBytes  = 1 << 20
	defCurrency = "EUR"
)

// Read parses a CSV feed and calls fn for every valid product, in file
// order. columns maps canonical fields to header names for feeds whose
// names the importer does not recognise ([feed.columns]).
func Read(r io.Reader, columns map[string]string, rep *Report, fn func(model.Product) error) error {
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
		return fmt.Errorf("feed: the file is empty")
	}
	if err != nil {
		return fmt.Errorf("feed: header: %w", err)
	}
	cols, extra := mapHeader(header, columns)
	if _, ok := cols[FieldID]; !ok {
		return fmt.Errorf("%w: none of the header names %q is an ID (id, sku, product_id, item_id...); map one with [feed.columns] id = \"...\"", ErrNoID, header)
	}
	for _, f := range Fields {
		if i, ok := cols[f]; ok {
			rep.Columns = append(rep.Columns, f+" ← "+strings.TrimSpace(header[i]))
		}
	}
	for i := range header {
		if name, ok := extra[i]; ok && name != "" {
			rep.Attributes = append(rep.Attributes, name)
		}
	}

	seen := map[string]int{}
	currentMain := ""
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				rep.Rows++
				rep.skip(pe.StartLine, "", pe.Err.Error())
				continue
			}
			return fmt.Errorf("feed: %w", err)
		}
		line, _ := cr.FieldPos(0) // only valid for a record read without error
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		rep.Rows++
		cell := func(f string) string {
			i, ok := cols[f]
			if !ok || i >= len(rec) {
				return ""
			}
			return clean(rec[i])
		}
		p := model.Product{Line: line, ID: cell(FieldID), Title: cell(FieldTitle), URL: cell(FieldURL),
			Description: cell(FieldDescription), Color: cell(FieldColor), Brand: cell(FieldBrand),
			CategoryIDs: list(cell(FieldCategoryIDs)), Categories: list(cell(FieldCategories)), Photos: photos(cell(FieldPhotos))}
		switch {
		case p.ID == "":
			rep.skip(line, FieldID, "no ID")
			continue
		case len(p.ID) > maxIDLen || strings.ContainsAny(p.ID, "\r\n\t"):
			rep.skip(line, FieldID, fmt.Sprintf("the ID must be one line of at most %d bytes", maxIDLen))
			continue
		case seen[p.ID] > 0:
			rep.skip(line, FieldID, fmt.Sprintf("duplicate ID %q: the first, on line %d, is kept", p.ID, seen[p.ID]))
			continue
		}
		if field, msg := checkURLs(p); msg != "" {
			rep.skip(line, field, msg)
			continue
		}
		if _, ok := cols[FieldPrice]; ok {
			v := cell(FieldPrice)
			if v == "" {
				rep.skip(line, FieldPrice, "no price")
				continue
			}
			price, cur, err := parsePrice(v)
			if err != nil {
				rep.skip(line, FieldPrice, err.Error())
				continue
			}
			p.Price, p.Currency = price, cur
		}
		if v := cell(FieldDiscountPrice); v != "" {
			price, cur, err := parsePrice(v)
			if err != nil {
				rep.skip(line, FieldDiscountPrice, err.Error())
				continue
			}
			p.DiscountPrice = price
			if p.Currency == "" {
				p.Currency = cur
			}
		}
		if p.Currency == "" {
			p.Currency = defCurrency
		}
		if v := cell(FieldStock); v != "" {
			n, err := strconv.ParseFloat(strings.ReplaceAll(v, ",", "."), 64)
			if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
				rep.note(line, FieldStock, fmt.Sprintf("stock %q is not a number: stock unknown", v))
			} else {
				s := int64(max(0, min(n, 1e12)))
				p.Stock = &s
			}
		}
		// Main: the main product's ID, or a flag. With a flag, a row marked
		// 1/yes/true is a main product and the rows after it marked 0/no/
		// false are its variations.
		switch m := cell(FieldMain); {
		case isYes(m):
			currentMain = p.ID
		case isNo(m):
			if currentMain != "" {
				p.MainID = currentMain
			}
		case m != "" && m != p.ID:
			p.MainID = m
		default:
			currentMain = p.ID
		}
		for i, name := range extra {
			if i < len(rec) && name != "" {
				if v := clean(rec[i]); v != "" {
					if p.Attributes == nil {
						p.Attributes = map[string]string{}
					}
					p.Attributes[name] = v
				}
			}
		}
		seen[p.ID] = line
		if err := fn(p); err != nil {
			return err
		}
	}
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
