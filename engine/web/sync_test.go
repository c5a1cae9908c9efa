package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// The schedule and the admin UI's "Sync now" share one syncer and what the
// feed's server said last: an unchanged feed is not imported again, neither
// on a click nor after a restart.
func TestSyncNowKnowsTheFeedDidNotChange(t *testing.T) {
	sample := sampleFeed(t)
	var full, fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		w.Header().Set("ETag", `"v1"`)
		w.Write([]byte(sample))
	}))
	defer srv.Close()
	cfg := enginetest.Config(t)
	cfg.Feed.URL = srv.URL + "/feed.csv?token=s3cret"
	cfg.Feed.AllowPrivate = true
	cfg.Feed.Interval = config.Duration{Duration: time.Hour}
	waitFetches := func(n int32) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); fetches.Load() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d fetches, want %d", fetches.Load(), n)
			}
		}
	}
	t.Run("first start", func(t *testing.T) {
		a := enginetest.Start(t, cfg)
		waitFetches(1) // the schedule syncs at once
		c := signedIn(t, a)
		var msg string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			resp, _ := c.do("POST", "/products/sync", url.Values{})
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if msg = loc.Query().Get("message"); !strings.Contains(msg, "already running") || time.Now().After(deadline) {
				break
			}
		}
		if msg != "The feed has not changed since the last sync." {
			t.Errorf("Sync now: %q", msg)
		}
	})
	n := fetches.Load()
	t.Run("restart", func(t *testing.T) {
		enginetest.Start(t, cfg)
		waitFetches(n + 1)
	})
	if full.Load() != 1 {
		t.Errorf("the unchanged feed was downloaded %d times, want once", full.Load())
	}
}
