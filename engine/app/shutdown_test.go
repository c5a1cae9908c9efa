package app_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/app"
	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// A shutdown while a feed import streams its body: the request's context
// is cancelled at the shutdown timeout, the import never starts or is
// discarded, and only then are the index and the store closed. The
// catalogue is the one before.
func TestShutdownWaitsForARunningImport(t *testing.T) {
	cfg := enginetest.Config(t)
	cfg.HTTP.ShutdownTimeout = config.Duration{Duration: 300 * time.Millisecond}
	a, err := app.New(cfg, enginetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	secret, k, _ := apikey.New("t", model.AllScopes(), time.Now())
	if err := a.Store.PutAPIKey(k); err != nil {
		t.Fatal(err)
	}
	before := a.Catalog.Count()
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()

	sample, err := os.ReadFile("../feed/testdata/feed-sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	body, w := io.Pipe()
	go w.Write(sample[:len(sample)/2]) // half a feed, and then nothing more
	req, _ := http.NewRequest("POST", a.PublicURL+"/api/v1/feed/import", body)
	req.Header.Set("Authorization", "Bearer "+secret)
	answered := make(chan struct{})
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		close(answered)
	}()
	gen, err := a.Store.Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the request is in flight, its body half sent
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown hangs")
	}
	w.Close()
	<-answered

	st, err := store.Open(store.Options{Dir: cfg.Storage.Dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if now, _ := st.Catalogue(); now != gen || before == 0 {
		t.Errorf("catalogue generation %d, before %d (%d products)", now, gen, before)
	}
}
