package store

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shoptrail/shoptrail/engine/model"
)

// Badger refuses every write while it drops a prefix. Drops happen on
// every feed import and projection rebuild, while events, API calls and
// sign-ins keep arriving: none of those may fail for it.
func TestWritesWaitForADropInsteadOfFailing(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	sp := ProjectionSpace("droptest")
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	var writes atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				var err error
				switch w {
				case 0: // the event log
					_, err = s.Append(events(fmt.Sprintf("e%d", i)), nil)
				case 1: // a catalogue being staged, through a WriteBatch
					var st *Staging
					if st, err = s.StageCatalogue(); err == nil {
						for j := range 50 {
							if err = st.Put(model.Product{ID: fmt.Sprintf("p%d", j)}); err != nil {
								break
							}
						}
						if err == nil {
							_, err = st.Commit(map[string]int{"n": 50}) // drops the old generation
						}
					}
				default: // a projection's writes
					err = s.Project(func(tx *Tx) error { return tx.Set(sp, fmt.Sprintf("%d-%d", w, i), i) })
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d, write %d: %w", w, i, err)
					return
				}
				writes.Add(1)
			}
		}()
	}
	for range 30 {
		if err := s.DropProjection("droptest", sp); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d writes during 30 drops", writes.Load())
}
