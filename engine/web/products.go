package web

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/search"
)

const maxFeedBody = 1 << 30

// maxFilterLen bounds the category, brand and color filters of a search:
// longer values cannot match anything the feed stores.
const maxFilterLen = 1000

// importFeed is POST /api/v1/feed/import: a full CSV feed in the body. The
// body is spooled to a file in the data directory, and the import runs as a
// job: the answer is 202 with the job's URL as soon as the body is in.
// ?force=true imports a feed that would otherwise be refused (no rows, or
// more than half of the catalogue removed).
func (s *Server) importFeed(w http.ResponseWriter, r *http.Request) error {
	force, err := parseForce(r.URL.Query().Get("force"))
	if err != nil {
		return err
	}
	if s.catalog.Busy() {
		return busyImport(w)
	}
	if err := s.diskErr(); err != nil {
		return err
	}
	f, size, err := s.spool(http.MaxBytesReader(w, r.Body, maxFeedBody))
	var tooBig *http.MaxBytesError
	var unread *bodyError
	switch {
	case errors.As(err, &tooBig):
		return err // 413
	case errors.As(err, &unread):
		return errorf(http.StatusBadRequest, "bad_body", "body", unread.Error())
	case err != nil:
		return err
	}
	job, err := s.catalog.StartImport(f, size, "api", catalog.ImportOptions{Force: force}, func() { f.Close() })
	if err != nil {
		f.Close()
		if errors.Is(err, catalog.ErrBusy) {
			return busyImport(w)
		}
		return err
	}
	url := "/api/v1/feed/jobs/" + job.ID
	w.Header().Set("Location", url)
	writeJSON(w, http.StatusAccepted, map[string]any{"job": job, "url": url})
	return nil
}

func busyImport(w http.ResponseWriter) error {
	w.Header().Set("Retry-After", "10")
	return errorf(http.StatusConflict, "busy", "", catalog.ErrBusy.Error())
}

func parseForce(raw string) (bool, error) {
	if raw == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(raw)
	if err != nil {
		return false, invalid("force", "force must be true or false")
	}
	return b, nil
}

// spool copies a feed into an unnamed file in the data directory (removed
// from the directory at once: nothing is left behind by a crash) and
// returns it at its start, with its size.
func (s *Server) spool(body io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp(s.cfg.Storage.Dir, "feed-import-*.tmp")
	if err != nil {
		return nil, 0, err
	}
	os.Remove(f.Name())
	rd := &readErr{r: body}
	n, err := io.Copy(f, rd)
	if rd.err != nil {
		err = &bodyError{rd.err}
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, n, nil
}

// readErr remembers the error of the reader it wraps, to tell a body that
// could not be read (the client's fault) from a file that could not be
// written (the server's).
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// bodyError is a request body that could not be read.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "the request body could not be read: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// feedJob is GET /api/v1/feed/jobs/{id}: an import's progress, and its
// result and report once it has ended.
func (s *Server) feedJob(w http.ResponseWriter, r *http.Request) error {
	job, ok := s.catalog.Job(r.PathValue("id"))
	if !ok {
		return errorf(http.StatusNotFound, "not_found", "id", "no import job "+r.PathValue("id")+" (jobs are kept in memory: the last 20, until a restart; GET /api/v1/feed/report has the last import's report)")
	}
	writeJSON(w, http.StatusOK, job)
	return nil
}

// feedReport is GET /api/v1/feed/report: the last import's report.
func (s *Server) feedReport(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.catalog.Report()
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "not_found", "", "no feed has been imported yet")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// getProduct is GET /api/v1/products/{id}.
func (s *Server) getProduct(w http.ResponseWriter, r *http.Request) error {
	it, err := s.catalog.Product(r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "not_found", "id", "no product "+r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, it)
	return nil
}

// searchProducts is GET /api/v1/products/search.
func (s *Server) searchProducts(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	q := search.Query{Text: v.Get("q"), Category: v.Get("category"), Brand: v.Get("brand"), Color: v.Get("color"), Sort: v.Get("sort")}
	if utf8.RuneCountInString(strings.TrimSpace(q.Text)) > search.MaxTextLen {
		return invalid("q", fmt.Sprintf("q may have at most %d characters", search.MaxTextLen))
	}
	for _, p := range []struct{ name, value string }{{"category", q.Category}, {"brand", q.Brand}, {"color", q.Color}} {
		if len(p.value) > maxFilterLen {
			return invalid(p.name, fmt.Sprintf("%s may have at most %d bytes", p.name, maxFilterLen))
		}
	}
	for _, p := range []struct {
		name string
		into **float64
	}{{"min_price", &q.MinPrice}, {"max_price", &q.MaxPrice}} {
		if raw := v.Get(p.name); raw != "" {
			f, err := strconv.ParseFloat(strings.Replace(raw, ",", ".", 1), 64)
			if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
				return invalid(p.name, p.name+" must be an amount such as 49.90")
			}
			*p.into = &f
		}
	}
	switch q.Sort {
	case "", "relevance", "price", "-price", "title":
	default:
		return invalid("sort", "sort must be relevance, price, -price or title")
	}
	if raw := v.Get("in_stock"); raw != "" {
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return invalid("in_stock", "in_stock must be true or false")
		}
		q.InStock = b
	}
	for _, p := range []struct {
		name string
		into *int
		max  int
	}{{"page", &q.Page, 1000}, {"size", &q.Size, 100}} {
		if raw := v.Get(p.name); raw != "" {
			n, err := strconv.Atoi(raw)
			if err != nil || n < 1 || n > p.max {
				return invalid(p.name, p.name+" must be a whole number from 1 to "+strconv.Itoa(p.max))
			}
			*p.into = n
		}
	}
	items, res, err := s.catalog.Search(q)
	if errors.Is(err, search.ErrNoIndex) {
		items, err = []catalog.Item{}, nil
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": res.Total, "products": items, "facets": res.Facets})
	return nil
}

// recommendations is GET /api/v1/products/{id}/recommendations.
func (s *Server) recommendations(w http.ResponseWriter, r *http.Request) error {
	limit, err := parseLimit(r.URL.Query().Get("limit"), 10, 50)
	if err != nil {
		return err
	}
	var items []catalog.Item
	switch kind := r.URL.Query().Get("kind"); kind {
	case "", "similar":
		items, err = s.catalog.Similar(r.PathValue("id"), limit)
	case "top_in_category":
		items, err = s.catalog.TopInCategory(r.PathValue("id"), limit)
	case "viewed_together":
		items, err = s.catalog.Together(store.ViewedTogether, r.PathValue("id"), limit)
	case "bought_together":
		items, err = s.catalog.Together(store.BoughtTogether, r.PathValue("id"), limit)
	default:
		return invalid("kind", "kind must be similar, viewed_together, bought_together or top_in_category")
	}
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "not_found", "id", "no product "+r.PathValue("id"))
	}
	if errors.Is(err, search.ErrNoIndex) {
		items, err = []catalog.Item{}, nil
	}
	if err != nil {
		return err
	}
	if items == nil {
		items = []catalog.Item{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"products": items})
	return nil
}

// unknownProducts is GET /api/v1/feed/unknown-products: product IDs that
// events named but the catalogue lacks, most frequent first. The feed's ID
// and the events' product_id must be the same.
func (s *Server) unknownProducts(w http.ResponseWriter, r *http.Request) error {
	counts, err := s.st.UnknownProducts(1000)
	if err != nil {
		return err
	}
	if counts == nil {
		counts = []store.Count{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"products": counts})
	return nil
}
