package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/enginetest"
)

var (
	longEvents   = flag.Int("long.events", 2_400_000, "BenchmarkLongRunMemory: events sent")
	longProducts = flag.Int("long.products", 200_000, "BenchmarkLongRunMemory: products in the feed")
	longMapped   = flag.Int64("long.mapped", -1, "BenchmarkLongRunMemory: [storage] mapped_limit (-1: the default)")
	longMemLimit = flag.Int64("long.memlimit", -1, "BenchmarkLongRunMemory: [storage] memory_limit (-1: the default)")
)

// feedCSV is a catalogue of n products in the format of the feed sample.
func feedCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`"ID";"Product title";"Product URL";"Categories IDs";"Categories Titles";"Description";"Price";"DiscountPrice";"Photos";"Color";"Brand";"Stock";"Main"` + "\n")
	colors := []string{"White", "Black", "Red", "Blue", "Green"}
	for i := range n {
		fmt.Fprintf(&b, `"%d";"Trail Runner %d";"https://shop.example/p/%d";"10,%d";"Shoes,Line %d";"Lightweight shoe number %d with a grippy outsole and a breathable mesh upper.";"%d.99";"";"https://shop.example/img/%d-1.jpg";"%s";"Brand %d";"%d";""`+"\n",
			100000+i, i, 100000+i, 11+i%40, i%40, i, 20+i%300, 100000+i, colors[i%5], i%97, i%50)
	}
	return b.Bytes()
}

// heapInUse is the Go heap in use that the admin /metrics report, 0 if
// they cannot be read.
func heapInUse(admin string) float64 {
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := regexp.MustCompile(`(?m)^go_memstats_heap_inuse_bytes (\S+)`).FindSubmatch(body); m != nil {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	return 0
}

// mappedParts sums a process's resident pages of mapped files by kind:
// Badger's value logs, tables and memtable logs, Bleve's segments, the
// rest (the binary, libraries).
func mappedParts(pid int) map[string]int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil
	}
	parts := map[string]int64{}
	kind := ""
	for l := range strings.Lines(string(b)) {
		f := strings.Fields(l)
		switch {
		case len(f) >= 6 && strings.Contains(f[0], "-") && strings.HasPrefix(f[5], "/"):
			path := f[5]
			switch {
			case strings.HasSuffix(path, ".vlog"):
				kind = "value logs"
			case strings.HasSuffix(path, ".sst"):
				kind = "tables"
			case strings.HasSuffix(path, ".mem"):
				kind = "memtable logs"
			case strings.HasSuffix(path, ".zap"), strings.Contains(path, "bleve"), strings.Contains(path, "search"):
				kind = "search index"
			default:
				kind = "other files"
			}
		case len(f) >= 1 && strings.Contains(f[0], "-"):
			kind = "" // anonymous or special
		case kind != "" && len(f) == 3 && f[0] == "Rss:":
			n, _ := strconv.ParseInt(f[1], 10, 64)
			parts[kind] += n << 10
		}
	}
	return parts
}

// BenchmarkLongRunMemory is issue 15's memory workload on the built binary
// with its defaults: 2.4 M events (page views, product views, carts,
// orders; 100 000 browsers, a third of them known by email) sent in
// batches of 500 to /api/v1/events, a 200 000-product feed imported
// meanwhile, the projections caught up, then a minute of searches and
// reports. It samples the process's RSS every 200 ms and reports its peak
// and its end, anonymous (heap, stacks) and file-backed (the binary,
// Badger's and Bleve's mapped files) apart. -long.mapped sets [storage]
// mapped_limit (0: no bound) to compare.
func BenchmarkLongRunMemory(b *testing.B) {
	bin, cfgPath, _ := build(b)
	// the config build wrote ends in [storage]
	for key, v := range map[string]int64{"mapped_limit": *longMapped, "memory_limit": *longMemLimit} {
		if v < 0 {
			continue
		}
		cfg, _ := os.ReadFile(cfgPath)
		cfg = append(cfg, fmt.Sprintf("%s = %d\n", key, v)...)
		if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	out, err := exec.Command(bin, "-config", cfgPath, "apikey", "create", "--name", "bench").CombinedOutput()
	if err != nil {
		b.Fatalf("apikey create: %v\n%s", err, out)
	}
	key := regexp.MustCompile(`st_[a-z0-9]+`).FindString(string(out))
	feed := feedCSV(*longProducts)
	for b.Loop() {
		cmd, public, admin := startBoth(b, bin, cfgPath)
		pid := cmd.Process.Pid
		var peak [3]int64 // VmRSS, RssAnon, RssFile
		var mu sync.Mutex
		stop := make(chan struct{})
		sampled := make(chan struct{})
		start := time.Now()
		// what the peaks were made of, looked at when one grows by 16 MiB
		var anonAt, fileAt time.Duration
		var anonHeap float64
		var fileParts map[string]int64
		go func() {
			defer close(sampled)
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			var anonSeen, fileSeen int64
			for {
				s := enginetest.ProcStatus(pid)
				if a := s["RssAnon"]; a > anonSeen+16<<20 {
					anonSeen = a
					h := heapInUse(admin)
					mu.Lock()
					anonAt, anonHeap = time.Since(start), h
					mu.Unlock()
				}
				if f := s["RssFile"]; f > fileSeen+16<<20 {
					fileSeen = f
					parts := mappedParts(pid)
					mu.Lock()
					fileAt, fileParts = time.Since(start), parts
					mu.Unlock()
				}
				mu.Lock()
				peak[0], peak[1], peak[2] = max(peak[0], s["VmRSS"]), max(peak[1], s["RssAnon"]), max(peak[2], s["RssFile"])
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		client := &http.Client{Timeout: 60 * time.Second}
		do := func(method, url string, body []byte, into any) int {
			req, _ := http.NewRequest(method, url, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ = io.ReadAll(resp.Body)
			if resp.StatusCode >= 300 {
				b.Logf("%s %s: %d %.300s", method, url, resp.StatusCode, body)
			}
			if into != nil {
				json.Unmarshal(body, into)
			}
			return resp.StatusCode
		}
		t0 := time.Now()
		// the feed, imported while the events arrive
		var job struct{ URL string }
		if st := do("POST", public+"/api/v1/feed/import?force=true", feed, &job); st != http.StatusAccepted {
			b.Fatalf("feed import: %d", st)
		}
		// the shoppers known by email, through the Users API
		var users bytes.Buffer
		for k := 0; k < 100_000; k += 3 {
			fmt.Fprintf(&users, `{"email":"shopper%d@example.com","firstName":"S%d","city":"Paris","isSubscribed":true}`+"\n", k, k)
		}
		if st := do("POST", public+"/api/v1/users/import", users.Bytes(), nil); st != http.StatusOK {
			b.Fatalf("users import: %d", st)
		}
		// the events: 4 senders, 500 a batch
		var sent atomic.Int64
		var wg sync.WaitGroup
		const batch = 500
		types := []string{"page_view", "page_view", "product_view", "product_view", "add_to_cart"}
		for w := range 4 {
			wg.Go(func() {
				var buf bytes.Buffer
				for i := w * batch; i < *longEvents; i += 4 * batch {
					buf.Reset()
					buf.WriteString(`{"events":[`)
					for j := i; j < min(i+batch, *longEvents); j++ {
						if j > i {
							buf.WriteByte(',')
						}
						shopper := (j * 7919) % 100_000
						ts := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(j) * time.Second).Format(time.RFC3339)
						who := fmt.Sprintf(`"anonymous_id":"a-%d","session_id":"s-%d-%d"`, shopper, shopper, j/5000)
						if shopper%3 == 0 {
							who += fmt.Sprintf(`,"email":"shopper%d@example.com"`, shopper)
						}
						if j%50 == 49 {
							fmt.Fprintf(&buf, `{"id":"e%d","type":"order","time":%q,%s,"props":{"order_id":"o%d","value":%d.90,"currency":"EUR","items":[{"product_id":"%d","quantity":1,"price":%d.90}]}}`,
								j, ts, who, j, 20+j%200, 100000+j%*longProducts, 20+j%200)
							continue
						}
						fmt.Fprintf(&buf, `{"id":"e%d","type":%q,"time":%q,%s,"url":"https://shop.example/p/%d?utm_source=src%d&utm_medium=cpc","props":{"product_id":"%d"}}`,
							j, types[j%len(types)], ts, who, 100000+j%*longProducts, shopper%7, 100000+j%*longProducts)
					}
					buf.WriteString(`]}`)
					if st := do("POST", public+"/api/v1/events", buf.Bytes(), nil); st != http.StatusOK {
						b.Fatalf("events: %d", st)
					}
					sent.Add(int64(min(batch, *longEvents-i)))
				}
			})
		}
		wg.Wait()
		ingest := time.Since(t0)
		// the import's end, and the projections' catching up
		var imported time.Duration
		for {
			var j struct{ State, Error string }
			do("GET", public+job.URL, nil, &j)
			if j.State == "failed" {
				b.Fatalf("feed import failed: %s", j.Error)
			}
			if j.State == "done" {
				imported = time.Since(t0)
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		for {
			behind := uint64(0)
			for _, p := range projections(b, admin) {
				behind = max(behind, p.Behind)
			}
			if behind == 0 {
				break
			}
			time.Sleep(time.Second)
		}
		caughtUp := time.Since(t0)
		// a minute of use: searches, a user, the dashboard's figures
		for i := 0; time.Since(t0) < caughtUp+time.Minute; i++ {
			for _, u := range []string{
				fmt.Sprintf("%s/api/v1/products/search?q=runner+%d", public, i),
				fmt.Sprintf("%s/api/v1/user/shopper%d@example.com", public, ((i*37)%33_334)*3),
				public + "/api/v1/reports/attribution",
			} {
				if st := do("GET", u, nil, nil); st != http.StatusOK {
					b.Fatalf("GET %s: %d", u, st)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		end := enginetest.ProcStatus(pid)
		heap := heapInUse(admin)
		close(stop)
		<-sampled
		mib := func(n float64) float64 { return n / (1 << 20) }
		b.Logf("ingestion ended at %.0f s, the import at %.0f s (it may end before the events), caught up at %.0f s",
			ingest.Seconds(), imported.Seconds(), caughtUp.Seconds())
		b.Logf("anonymous memory last grew past a 16 MiB step at %.0f s, with %.0f MiB of Go heap in use", anonAt.Seconds(), mib(anonHeap))
		b.Logf("mapped files last grew past a 16 MiB step at %.0f s: %v (MiB)", fileAt.Seconds(), func() map[string]int64 {
			out := map[string]int64{}
			for k, v := range fileParts {
				out[k] = v >> 20
			}
			return out
		}())
		b.ReportMetric(float64(sent.Load())/ingest.Seconds(), "events/s")
		b.ReportMetric(caughtUp.Seconds(), "s-to-caught-up")
		b.ReportMetric(float64(peak[0])/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(peak[1])/(1<<20), "peak-RssAnon-MiB")
		b.ReportMetric(float64(peak[2])/(1<<20), "peak-RssFile-MiB")
		b.ReportMetric(float64(end["VmRSS"])/(1<<20), "end-RSS-MiB")
		b.ReportMetric(float64(end["RssAnon"])/(1<<20), "end-RssAnon-MiB")
		b.ReportMetric(float64(end["RssFile"])/(1<<20), "end-RssFile-MiB")
		b.ReportMetric(heap/(1<<20), "end-heap-inuse-MiB")
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
}
