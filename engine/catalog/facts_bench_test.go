package catalog

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
)

// BenchmarkImportRecordingChanges re-imports 100 000 products with every
// one on sale (the worst case: a fact for each product in stock), once
// with the changes compared and recorded in the log and once without,
// alternated in the same run; it reports both times and their ratio.
func BenchmarkImportRecordingChanges(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	before := generated(n)
	sale := bytes.ReplaceAll(before, []byte(`";"";"https://shop.example/img/`), []byte(`";"1.00";"https://shop.example/img/`))
	reimport := func(record bool) (time.Duration, int) {
		dir := b.TempDir()
		st, err := store.Open(store.Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		tr := track.New(st, track.Options{MaxPendingEvents: 1 << 20, MaxBatchEvents: 2000})
		defer tr.Close()
		c, err := Open(st, filepath.Join(dir, "search-index"), nil, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if record {
			if err := c.RecordChangesWith(tr.Record); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := c.Import(bytes.NewReader(before), "before"); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := c.Import(bytes.NewReader(sale), "sale"); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		seq, err := st.LastSeq()
		if err != nil {
			b.Fatal(err)
		}
		return took, int(seq)
	}
	for b.Loop() {
		without, _ := reimport(false)
		with, facts := reimport(true)
		b.ReportMetric(without.Seconds(), "without-s")
		b.ReportMetric(with.Seconds(), "recording-s")
		b.ReportMetric(with.Seconds()/without.Seconds(), "ratio")
		b.ReportMetric(float64(facts), "facts")
	}
}
