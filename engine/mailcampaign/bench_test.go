package mailcampaign_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/config"
	"github.com/shoptrail/shoptrail/engine/enginetest"
	"github.com/shoptrail/shoptrail/engine/mail"
	"github.com/shoptrail/shoptrail/engine/mailcampaign"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/resident"
	segsvc "github.com/shoptrail/shoptrail/engine/segment"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
	usersvc "github.com/shoptrail/shoptrail/engine/user"
)

// listSegment is a segment whose members are a fixed list, for the
// benchmark (building a real segment over 100 000 profiles is the segments
// benchmark's business).
type listSegment struct{ emails []string }

func (l listSegment) Get(id string) (segsvc.View, error) {
	return segsvc.View{ID: id, Count: int64(len(l.emails))}, nil
}

func (l listSegment) Members(_, after string, limit int, _ bool) ([]segsvc.Member, string, error) {
	i := 0
	if after != "" {
		for i < len(l.emails) && model.UserProfileID(l.emails[i]) <= after {
			i++
		}
	}
	var out []segsvc.Member
	for ; i < len(l.emails) && len(out) < limit; i++ {
		out = append(out, segsvc.Member{Profile: model.UserProfileID(l.emails[i]), Email: l.emails[i]})
	}
	next := ""
	if i < len(l.emails) {
		next = out[len(out)-1].Profile
	}
	return out, next, nil
}

// BenchmarkCampaign100k fixes the list of, renders and queues a campaign
// to 100 000 subscribed recipients (the goal: under 30 s and 200 MB RSS),
// and reports the time and the process's peak RSS. The data files' resident
// pages are bounded as serve bounds them ([storage] mapped_limit;
// -campaign.mapped to change it).
var benchMapped = flag.Int64("campaign.mapped", config.Default().Storage.MappedLimit, "[storage] mapped_limit: bytes of the data files kept resident (0: no bound)")

func BenchmarkCampaign100k(b *testing.B) {
	const n = 100_000
	dir := b.TempDir()
	st, err := store.Open(store.Options{Dir: dir, Logger: enginetest.Logger(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	trim := resident.New(dir, *benchMapped, nil)
	trim.Start(time.Second)
	defer trim.Stop()
	tr := track.New(st, track.Options{MaxPendingEvents: 200000, MaxBatchEvents: 2000})
	defer tr.Close()
	users := usersvc.New(st, tr, nil, time.Now)
	var nd strings.Builder
	emails := make([]string, n)
	for i := range n {
		emails[i] = fmt.Sprintf("r%06d@example.com", i)
		fmt.Fprintf(&nd, `{"email":%q,"firstName":"R%d","isSubscribed":true}`+"\n", emails[i], i)
	}
	if _, err = users.Import(context.Background(), strings.NewReader(nd.String()), true); err != nil {
		b.Fatal(err)
	}
	c := config.Default().Email
	c.From = "Shop <hello@shop.example>"
	m, err := mail.New(mail.Options{Store: st, Recorder: tr, Subscriptions: mail.Users{Store: st, Users: users}, Config: c,
		KeyFile: filepath.Join(b.TempDir(), "email.key"), PublicURL: "https://track.shop.example"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		svc := mailcampaign.New(mailcampaign.Options{Store: st, Mailer: m, Segments: listSegment{emails}})
		camp, err := svc.Create(mailcampaign.Input{Name: "Bench", Subject: "News", Segment: "s", Send: true,
			HTML: `<h1>Hello {{.FirstName | default "there"}}</h1><p>Our <a href="https://shop.example/sale">sale</a> is on.</p>`})
		if err != nil {
			b.Fatal(err)
		}
		// the peak from here on: the users' import above is not the campaign's
		// (its garbage is returned to the OS first)
		runtime.GC()
		debug.FreeOSMemory()
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		base := enginetest.ProcStatus(0)["VmHWM"]
		t0 := time.Now()
		// what the RSS is made of, sampled: the process's own memory
		// (RssAnon: the Go heap, Badger's memtables), the files Badger maps
		// (RssFile: its tables and value log, and the binary; page cache
		// the kernel can reclaim), the Go heap in use
		stop := make(chan struct{})
		done := make(chan [4]int64)
		go func() {
			var mx [4]int64
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				st := enginetest.ProcStatus(0)
				v := [4]int64{st["RssAnon"], st["RssFile"], int64(ms.HeapInuse), int64(ms.HeapSys - ms.HeapReleased)}
				for i := range mx {
					mx[i] = max(mx[i], v[i])
				}
				select {
				case <-stop:
					done <- mx
					return
				case <-t.C:
				}
			}
		}()
		for {
			more, err := svc.Step(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if !more {
				break
			}
		}
		took := time.Since(t0)
		close(stop)
		mx := <-done
		b.Logf("peak RssAnon %d MiB, RssFile %d MiB, Go heap in use %d MiB, Go heap not returned to the OS %d MiB", mx[0]>>20, mx[1]>>20, mx[2]>>20, mx[3]>>20)
		got, _ := svc.Get(camp.ID)
		if got.Status != mailcampaign.Sent || got.Progress.Queued != n {
			b.Fatalf("campaign %+v", got.Progress)
		}
		b.ReportMetric(took.Seconds(), "s/100k")
		b.ReportMetric(float64(n)/took.Seconds(), "recipients/s")
		b.ReportMetric(float64(enginetest.ProcStatus(0)["VmHWM"])/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(base)/(1<<20), "RSS-before-MiB")
		b.ReportMetric(float64(mx[0])/(1<<20), "peak-RssAnon-MiB")
		b.ReportMetric(float64(mx[1])/(1<<20), "peak-RssFile-MiB")
		b.ReportMetric(float64(mx[2])/(1<<20), "peak-heap-MiB")
		b.Logf("trimmer %+v", trim.Stats())
	}
}
