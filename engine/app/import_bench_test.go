package app_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
)

// BenchmarkUsersImport posts 100 000 users as NDJSON to
// /api/v1/users/import (half of them subscribed, which also stores 50 000
// subscribe events) and reports users/s.
func BenchmarkUsersImport(b *testing.B) {
	const n = 100_000
	var body bytes.Buffer
	genders := []string{"female", "male", "other", "unknown"}
	for i := range n {
		fmt.Fprintf(&body, `{"email":"user%06d@example.com","isSubscribed":%v,"gender":%q,"city":"City %d","loyaltyTier":"tier%d","points":%d}`+"\n",
			i, i%2 == 0, genders[i%4], i%500, i%5, i)
	}
	for b.Loop() {
		b.StopTimer()
		a := enginetest.NewApp(b)
		b.StartTimer()
		start := time.Now()
		req, _ := http.NewRequest("POST", a.PublicURL+"/api/v1/users/import", bytes.NewReader(body.Bytes()))
		req.Header.Set("Authorization", "Bearer "+a.Key)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("import: %d", resp.StatusCode)
		}
		b.ReportMetric(n/time.Since(start).Seconds(), "users/s")
		b.ReportMetric(float64(body.Len())/(1<<20), "body-MiB")
	}
}
