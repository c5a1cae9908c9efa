package web_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
)

// TestFeedImportBadInput runs the checklist's bad inputs against POST
// /api/v1/feed/import and GET /api/v1/feed/jobs/{id}: a 4xx naming the
// problem, or a job that fails with a report; never a 5xx; the catalogue
// stays.
func TestFeedImportBadInput(t *testing.T) {
	a := enginetest.NewApp(t) // the demo catalogue: 24 products
	before := a.Catalog.Count()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte("0"), 1<<20))
	zw.Close()
	for _, tt := range []struct {
		name, query, body string
		status            int    // of the POST
		field             string // of a 400
		failure           string // in the failed job's error
	}{
		{"force not a boolean", "?force=maybe", "ID\n1\n", 400, "force", ""},
		{"empty body", "", "", 202, "", "empty"},
		{"header only", "", "ID;Title;Price\n", 202, "", "no rows"},
		{"no ID column", "", "name;price\nx;1\n", 202, "", "ID"},
		{"binary", "", "\x00\x01\x02\xff\xfe", 202, "", ""},
		{"gzip sent as CSV", "", gz.String(), 202, "", ""},
		{"one row: removes more than half", "", "ID;Title;Price\n1;x;1\n", 202, "", "more than half"},
		{"bare quotes, ragged rows", "", "ID;Title\n\"1;\"x\n2\n3;a;b;c\n", 202, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, job := importJob(t, a, tt.body, tt.query)
			if st != tt.status {
				t.Fatalf("POST: %d, want %d", st, tt.status)
			}
			if st != 202 {
				return
			}
			if job.State != "failed" || !strings.Contains(job.Error, tt.failure) || job.Report.Failure == "" {
				t.Fatalf("job: %+v", job)
			}
			if a.Catalog.Count() != before {
				t.Fatalf("the catalogue changed: %d → %d", before, a.Catalog.Count())
			}
		})
	}
	// jobs: unknown, odd ids, no key, a key without feed:write
	for _, id := range []string{"0000000000000000", "..%2f..%2fetc", strings.Repeat("a", 5000)} {
		if st := a.Do(t, "GET", "/api/v1/feed/jobs/"+id, nil, nil, a.Auth()...); st != 404 {
			t.Errorf("job %.20s: %d", id, st)
		}
	}
	if st := a.Do(t, "GET", "/api/v1/feed/jobs/x", nil, nil); st != 401 {
		t.Errorf("no key: %d", st)
	}
	secret, k, _ := apikey.New("reader", []string{model.ScopeProducts}, time.Now())
	a.Store.PutAPIKey(k)
	if st := a.Do(t, "POST", "/api/v1/feed/import", "ID\n1\n", nil, "Authorization", "Bearer "+secret); st != 403 {
		t.Errorf("import without feed:write: %d", st)
	}
	if st := a.Do(t, "GET", "/api/v1/feed/jobs/x", nil, nil, "Authorization", "Bearer "+secret); st != 403 {
		t.Errorf("job without feed:write: %d", st)
	}
	// the admin upload: not multipart, no file
	c := signedIn(t, a)
	for _, ct := range []string{"text/plain", "multipart/form-data; boundary=x"} {
		req, _ := http.NewRequest("POST", a.AdminURL+"/products/upload", strings.NewReader("junk"))
		req.Header.Set("Content-Type", ct)
		req.AddCookie(c.cookie)
		resp, err := (&http.Transport{}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("upload as %s: %d", ct, resp.StatusCode)
		}
	}
}
