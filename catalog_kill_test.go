package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// TestKill9HalfWayThroughAnImportWithChanges imports a feed of sold-out
// products, then one that brings them all back in stock, killing the
// import with SIGKILL at different moments (reading, comparing, indexing,
// recording the facts) before letting one finish. After every kill the
// catalogue is either the old one with no fact recorded or waiting, or the
// new one with every fact recorded or waiting, none twice; at the end each
// product's product_back_in_stock is in the log exactly once.
func TestKill9HalfWayThroughAnImportWithChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, cfgPath, data := build(t)
	const n = 10_000
	dir := t.TempDir()
	write := func(name, stock string) string {
		var b strings.Builder
		b.WriteString("ID;Title;Price;Stock\n")
		for i := range n {
			fmt.Fprintf(&b, "p%05d;Product %d;%d.00;%s\n", i, i, 10+i%50, stock)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	soldOut, back := write("sold-out.csv", "0"), write("back.csv", "3")
	run := func(feed string) *exec.Cmd {
		cmd := exec.Command(bin, "-config", cfgPath, "feed", "import", "--force", feed)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	began := time.Now()
	if out, err := exec.Command(bin, "-config", cfgPath, "feed", "import", soldOut).CombinedOutput(); err != nil {
		t.Fatalf("first import: %v\n%s", err, out)
	}
	took := time.Since(began) // about the second one's time up to its recording
	t.Logf("the first import took %v", took.Round(time.Millisecond))
	// state reads the data directory: the catalogue's generation, the facts
	// recorded per product, and how many wait to be recorded
	state := func() (gen uint64, recorded map[string]int, waiting int) {
		st, err := store.Open(store.Options{Dir: data})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if gen, err = st.Catalogue(); err != nil {
			t.Fatal(err)
		}
		evs, err := st.EventsAfter(0, 10*n)
		if err != nil {
			t.Fatal(err)
		}
		recorded = map[string]int{}
		for _, ev := range evs {
			if ev.Type == model.ProductBackInStock {
				var id string
				json.Unmarshal(ev.Props["product_id"], &id)
				recorded[id]++
			}
		}
		facts, err := st.Facts(nil, 10*n)
		if err != nil {
			t.Fatal(err)
		}
		return gen, recorded, len(facts)
	}
	gen0, rec, _ := state()
	if len(rec) != 0 {
		t.Fatalf("the first import recorded %d facts", len(rec))
	}
	check := func(when string) (switched bool) {
		t.Helper()
		gen, recorded, waiting := state()
		total := 0
		for id, k := range recorded {
			if k != 1 {
				t.Errorf("%s: %s recorded %d times", when, id, k)
			}
			total += k
		}
		switch {
		case gen == gen0 && (total != 0 || waiting != 0):
			t.Errorf("%s: the old catalogue with %d facts recorded and %d waiting", when, total, waiting)
		case gen != gen0 && total+waiting != n:
			t.Errorf("%s: the new catalogue with %d facts recorded and %d waiting, want %d in all", when, total, waiting, n)
		}
		t.Logf("%s: catalogue %s, %d facts recorded, %d waiting", when, map[bool]string{true: "switched", false: "old"}[gen != gen0], total, waiting)
		return gen != gen0
	}
	switched := false
	for i, frac := range []float64{0.15, 0.3, 0.6, 0.9, 1.0, 1.05, 1.1, 1.15, 1.2, 1.3, 1.5} {
		if switched {
			break
		}
		cmd := run(back)
		time.Sleep(time.Duration(frac * float64(took)))
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		switched = check(fmt.Sprintf("kill %d at %.0f%%", i+1, frac*100))
	}
	// facts left waiting are recorded when the next run opens the
	// catalogue: kill those runs early, a little later each time
	for i, delay := 0, 100*time.Millisecond; i < 6; i, delay = i+1, delay*2 {
		if _, _, waiting := state(); waiting == 0 {
			break
		}
		cmd := run(back)
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		check(fmt.Sprintf("kill at start-up after %v", delay))
	}
	// the next run records what waits and finishes the import
	if out, err := exec.Command(bin, "-config", cfgPath, "feed", "import", "--force", back).CombinedOutput(); err != nil {
		t.Fatalf("last import: %v\n%s", err, out)
	}
	if !check("after the last import") {
		t.Fatal("the catalogue was not switched")
	}
	if _, recorded, waiting := state(); len(recorded) != n || waiting != 0 {
		t.Errorf("%d products with a fact, %d waiting; want %d and 0", len(recorded), waiting, n)
	}
}
