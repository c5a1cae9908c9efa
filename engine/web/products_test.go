package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/feed"
)

func sampleFeed(t *testing.T) string {
	b, err := os.ReadFile("../feed/testdata/feed-sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type searchResult struct {
	Total    int
	Products []catalog.Item
	Facets   map[string][]struct {
		Value string
		Count int
	}
}

func ids(items []catalog.Item) string {
	var out []string
	for _, it := range items {
		out = append(out, it.ID)
	}
	return strings.Join(out, ",")
}

// importJob posts a feed to /api/v1/feed/import (query: "" or "?force=true")
// and, when it is accepted (202), waits for the job to end and returns it.
func importJob(t *testing.T, a *enginetest.App, body, query string) (int, catalog.Job) {
	t.Helper()
	var started struct {
		Job catalog.Job
		URL string
	}
	st := a.Do(t, "POST", "/api/v1/feed/import"+query, body, &started, a.Auth()...)
	if st != 202 {
		return st, catalog.Job{}
	}
	if started.URL != "/api/v1/feed/jobs/"+started.Job.ID || started.Job.State != "running" {
		t.Fatalf("202: %+v", started)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var job catalog.Job
		if st := a.Do(t, "GET", started.URL, nil, &job, a.Auth()...); st != 200 {
			t.Fatalf("GET %s: %d", started.URL, st)
		}
		if job.State != "running" {
			if job.Report == nil || job.Finished == nil || job.Progress.Phase != "done" {
				t.Fatalf("ended job: %+v", job)
			}
			return st, job
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job did not end: %+v", job)
		}
	}
}

func TestProductFeedAndSearch(t *testing.T) {
	cfg := enginetest.Config(t)
	t.Run("first run", func(t *testing.T) {
		a := enginetest.Start(t, cfg)
		st, job := importJob(t, a, sampleFeed(t), "")
		rep := *job.Report
		if st != 202 || job.State != "done" || rep.Imported != 24 || rep.Variations != 12 || job.Progress.Rows != 24 || job.Progress.Indexed != 12 {
			t.Fatalf("import: %d %+v", st, job)
		}
		var it catalog.Item
		if st := a.Do(t, "GET", "/api/v1/products/1005", nil, &it, a.Auth()...); st != 200 || len(it.Variations) != 3 || it.Title != "Merino Beanie" {
			t.Fatalf("product: %d %+v", st, it)
		}
		var res searchResult
		// typo tolerance: "runing shoes" finds the running shoes
		res = searchResult{}
		a.Do(t, "GET", "/api/v1/products/search?q=runing+shoes", nil, &res, a.Auth()...)
		if res.Total < 2 || !strings.Contains(ids(res.Products), "1001") || !strings.Contains(ids(res.Products), "1010") {
			t.Errorf("runing shoes: %d %s", res.Total, ids(res.Products))
		}
		// main products only, with their variations inside
		res = searchResult{}
		a.Do(t, "GET", "/api/v1/products/search?q=beanie", nil, &res, a.Auth()...)
		if ids(res.Products) != "1005" || len(res.Products[0].Variations) != 3 {
			t.Errorf("beanie: %s", ids(res.Products))
		}
		// filters and facets; the variations' colours count for their main product
		res = searchResult{}
		a.Do(t, "GET", "/api/v1/products/search?category=11&brand=Velora", nil, &res, a.Auth()...)
		if ids(res.Products) != "1010" {
			t.Errorf("category+brand: %s", ids(res.Products))
		}
		res = searchResult{}
		a.Do(t, "GET", "/api/v1/products/search?color=Grey&sort=price", nil, &res, a.Auth()...)
		if ids(res.Products) != "1012,1021,1017,1005" {
			t.Errorf("grey by price: %s", ids(res.Products))
		}
		res = searchResult{}
		a.Do(t, "GET", "/api/v1/products/search?min_price=100&max_price=140&sort=-price", nil, &res, a.Auth()...)
		if ids(res.Products) != "1010,1002" && ids(res.Products) != "1001,1010" {
			t.Logf("price band: %s", ids(res.Products))
		}
		for _, p := range res.Products {
			if price := float64(p.EffectivePrice()) / 100; price < 100 || price > 140 {
				t.Errorf("%s costs %.2f, outside 100..140", p.ID, price)
			}
		}
		res = searchResult{}
		a.Do(t, "GET", "/api/v1/products/search", nil, &res, a.Auth()...)
		if res.Total != 12 || len(res.Facets["brand"]) != 4 {
			t.Errorf("all: %d, brand facet %+v", res.Total, res.Facets["brand"])
		}
		// recommendations
		var rec struct{ Products []catalog.Item }
		a.Do(t, "GET", "/api/v1/products/1001/recommendations?kind=similar&limit=5", nil, &rec, a.Auth()...)
		if len(rec.Products) == 0 || strings.Contains(ids(rec.Products), "1001") || !strings.Contains(ids(rec.Products), "1010") {
			t.Errorf("similar to 1001: %s", ids(rec.Products))
		}
		a.Do(t, "GET", "/api/v1/products/1007/recommendations?kind=top_in_category", nil, &rec, a.Auth()...)
		if strings.Contains(ids(rec.Products), "1005") || !strings.Contains(ids(rec.Products), "1017") {
			t.Errorf("top in category of a beanie variation: %s", ids(rec.Products))
		}
		for q, field := range map[string]string{"/api/v1/products/search?min_price=x": "min_price", "/api/v1/products/search?sort=best": "sort",
			"/api/v1/products/search?size=500": "size", "/api/v1/products/1001/recommendations?kind=magic": "kind"} {
			var e apiError
			if st := a.Do(t, "GET", q, nil, &e, a.Auth()...); st != 400 || e.Error.Field != field {
				t.Errorf("%s: %d %+v", q, st, e.Error)
			}
		}
		if st := a.Do(t, "GET", "/api/v1/products/nope", nil, nil, a.Auth()...); st != 404 {
			t.Errorf("unknown product: %d", st)
		}

		// a feed that cannot be read changes nothing
		if st, bad := importJob(t, a, "name;price\nx;1\n", ""); st != 202 || bad.State != "failed" || bad.Report.Failure == "" || bad.Error == "" || bad.Refused {
			t.Fatalf("unreadable feed: %d %+v", st, bad)
		}
		if st := a.Do(t, "GET", "/api/v1/products/1001", nil, &it, a.Auth()...); st != 200 {
			t.Fatalf("the catalogue changed after a failed import: %d", st)
		}
		// a new full feed: what is missing is marked removed; bad rows are reported
		lines := strings.Split(sampleFeed(t), "\n")
		smaller := strings.Join(append(lines[:3], `"";"No ID";"";"";"";"";"1";"";"";"";"";"";""`, `"2001";"Bad";"";"";"";"";"12,5,0";"";"";"";"";"";""`), "\n") + "\n"
		// it removes more than half of the catalogue: refused without force
		if _, job := importJob(t, a, smaller, ""); job.State != "failed" || !job.Refused || !strings.Contains(job.Error, "more than half") {
			t.Fatalf("a feed removing 22 of 24 products: %+v", job)
		}
		if st := a.Do(t, "GET", "/api/v1/products/1003", nil, &it, a.Auth()...); st != 200 || it.Removed {
			t.Fatalf("the refused import changed the catalogue: %d %+v", st, it)
		}
		_, job = importJob(t, a, smaller, "?force=true")
		rep = *job.Report
		if job.State != "done" || rep.Imported != 2 || rep.Removed != 22 || rep.Skipped != 2 || rep.Errors[0].Line != 4 || rep.Errors[1].Line != 5 || rep.Errors[1].Field != "price" {
			t.Fatalf("second import: %+v", rep)
		}
		a.Do(t, "GET", "/api/v1/products/1003", nil, &it, a.Auth()...)
		if !it.Removed {
			t.Errorf("1003 is not marked removed: %+v", it)
		}
		res = searchResult{}
		a.Do(t, "GET", "/api/v1/products/search", nil, &res, a.Auth()...)
		if ids(res.Products) != "1001,1002" {
			t.Errorf("after the second import: %s", ids(res.Products))
		}
		var last feed.Report
		a.Do(t, "GET", "/api/v1/feed/report", nil, &last, a.Auth()...)
		if last.Imported != 2 || last.Removed != 22 || len(last.Errors) != 2 {
			t.Errorf("stored report %+v", last)
		}
	})
	// the index is damaged: the next start rebuilds it from Badger
	idx := filepath.Join(cfg.Storage.Dir, "search-index")
	entries, _ := os.ReadDir(idx)
	for _, e := range entries {
		if e.IsDir() {
			os.RemoveAll(filepath.Join(idx, e.Name()))
		}
	}
	a := enginetest.Start(t, cfg)
	// the index is rebuilt in the background: 503 with Retry-After until then
	var res searchResult
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		req, _ := http.NewRequest("GET", a.PublicURL+"/api/v1/products/search?q=trail", nil)
		req.Header.Set("Authorization", "Bearer "+a.Key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(body, &res); err != nil {
				t.Fatal(err)
			}
			break
		}
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "index_rebuilding") || time.Now().After(deadline) {
			t.Fatalf("search while the index is rebuilt: %d %s", resp.StatusCode, body)
		}
	}
	if ids(res.Products) != "1001" {
		t.Errorf("after a rebuild: %s", ids(res.Products))
	}
}

func TestTogetherAndUnknownProducts(t *testing.T) {
	a := enginetest.NewApp(t)
	if st, _ := importJob(t, a, sampleFeed(t), ""); st != 202 { // the import runs as a job: wait for its end
		t.Fatalf("import: %d", st)
	}
	view := func(id, anon, sess, product string) map[string]any {
		return map[string]any{"id": id, "type": "product_view", "anonymous_id": anon, "session_id": sess,
			"url": "https://shop.example/p/" + product, "props": map[string]any{"product_id": product}}
	}
	var ans answer
	a.Do(t, "POST", "/t", batch(
		view("1", "a", "s1", "1001"), view("2", "a", "s1", "1010"), view("3", "a", "s1", "1002"), view("4", "a", "s1", "1001"),
		view("5", "b", "s2", "1001"), view("6", "b", "s2", "1010"),
		view("7", "c", "s3", "1006"), view("8", "c", "s3", "1001"), // a variation of the beanie 1005
		view("9", "c", "s3", "9999"), view("10", "c", "s3", "9999"),
		map[string]any{"id": "11", "type": "order", "anonymous_id": "b", "session_id": "s2", "url": "https://shop.example/thanks",
			"props": map[string]any{"order_id": "o1", "value": 10, "currency": "EUR", "items": []any{
				map[string]any{"product_id": "1001", "price": 5}, map[string]any{"product_id": "1003", "price": 5}, map[string]any{"product_id": "1001", "price": 5}}}},
	), &ans)
	if ans.Accepted != 11 {
		t.Fatalf("%+v", ans)
	}
	a.Fold(t)
	var rec struct{ Products []catalog.Item }
	a.Do(t, "GET", "/api/v1/products/1001/recommendations?kind=viewed_together", nil, &rec, a.Auth()...)
	if ids(rec.Products) != "1010,1002,1005" {
		t.Errorf("viewed together with 1001: %s (want 1010 twice, then 1002 and the beanie's main product)", ids(rec.Products))
	}
	rec.Products = nil
	a.Do(t, "GET", "/api/v1/products/1003/recommendations?kind=bought_together", nil, &rec, a.Auth()...)
	if ids(rec.Products) != "1001" {
		t.Errorf("bought together with 1003: %s", ids(rec.Products))
	}
	rec.Products = nil
	a.Do(t, "GET", "/api/v1/products/1007/recommendations?kind=viewed_together", nil, &rec, a.Auth()...)
	if ids(rec.Products) != "1001" {
		t.Errorf("viewed together with a variation of 1005: %s", ids(rec.Products))
	}
	var unknown struct {
		Products []struct {
			ID    string
			Count int
		}
	}
	a.Do(t, "GET", "/api/v1/feed/unknown-products", nil, &unknown, a.Auth()...)
	if len(unknown.Products) != 1 || unknown.Products[0].ID != "9999" || unknown.Products[0].Count != 2 {
		t.Errorf("unknown products %+v", unknown.Products)
	}
}
