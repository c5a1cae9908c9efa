// Package catalog keeps the shop's products: it imports feeds into Badger
// (the source of truth), atomically, and keeps the Bleve index (package
// search) in step with them.
package catalog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoptrail/shoptrail/engine/feed"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/redact"
	"github.com/shoptrail/shoptrail/engine/resident"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/search"
)

// ErrBusy means an import is already running: imports are single-flight.
var ErrBusy = errors.New("catalog: an import is already running")

// Catalog is the product catalogue.
type Catalog struct {
	st      *store.Store
	idx     *search.Index
	columns map[string]string
	urlTmpl string // [feed] product_url_template
	log     *slog.Logger
	now     func() time.Time

	importing sync.Mutex
	jobsDone  sync.WaitGroup // import jobs until they have recorded their end; Add under importing
	shape     atomic.Pointer[shape]
	writable  func() error // nil, or an error when imports must not write (a full disk)

	jobs       jobs                     // imports run in the background (jobs.go)
	rebuilding atomic.Pointer[jobState] // the index's rebuild at start-up, nil when none runs
	closing    chan struct{}            // closed by Close: running imports stop
	closeOnce  sync.Once

	rec     Recorder   // records what imports change (facts.go); nil: nothing
	factsMu sync.Mutex // one recordFacts at a time
}

// SetProductURLTemplate sets [feed] product_url_template: the URL of
// products whose feed has none. Call it before the first import.
func (c *Catalog) SetProductURLTemplate(t string) { c.urlTmpl = t }

// RefuseImportsWhen makes imports and syncs fail with check's error, before
// they fetch or read anything, whenever check returns one (the disk guard).
func (c *Catalog) RefuseImportsWhen(check func() error) { c.writable = check }

func (c *Catalog) canWrite() error {
	if c.writable == nil {
		return nil
	}
	return c.writable()
}

// shape is what the catalogue's products are to each other, kept in memory.
type shape struct {
	families map[string][]string // main ID → variation IDs
	mainOf   map[string]string   // variation ID → main ID
	known    map[string]bool     // every product ID, removed ones too
	count    int                 // products not removed
}

// Count is how many products (variations included, removed ones not) the
// catalogue holds.
func (c *Catalog) Count() int { return c.shape.Load().count }

// Known reports whether a product ID is in the catalogue.
func (c *Catalog) Known(id string) bool { return c.shape.Load().known[id] }

// main returns the main product's ID of a product.
func (sh *shape) main(id string) string {
	if m, ok := sh.mainOf[id]; ok {
		return m
	}
	return id
}

// Open opens the index in indexDir and reconciles it with the store:
// a missing, damaged or stale index is rebuilt from Badger.
func Open(st *store.Store, indexDir string, columns map[string]string, log *slog.Logger) (*Catalog, error) {
	idx, err := search.Open(indexDir)
	if err != nil {
		return nil, err
	}
	c := &Catalog{st: st, idx: idx, columns: columns, log: log, now: time.Now, closing: make(chan struct{})}
	gen, err := st.Catalogue()
	if err != nil {
		idx.Close()
		return nil, err
	}
	sh, extras, mains, err := c.scan(gen)
	if err != nil {
		idx.Close()
		return nil, err
	}
	c.shape.Store(sh)
	if gen != 0 && idx.Generation() != gen {
		// a crash during indexing, or a damaged index: rebuild it in the
		// background, so that the listeners come up at once; searches
		// answer ErrRebuilding meanwhile
		log.Info("rebuilding the product index from the store in the background", "generation", gen, "index_generation", idx.Generation())
		progress := &jobState{}
		progress.toIndex(mains)
		c.rebuilding.Store(progress)
		c.importing.Lock() // imports wait for the rebuild; Close stops it
		go func() {
			defer c.importing.Unlock()
			defer c.rebuilding.Store(nil)
			defer lowGC()()
			start := time.Now()
			if err := c.index(gen, extras, progress); err != nil {
				if !errors.Is(err, ErrClosed) {
					log.Error("rebuild the product index", "err", err)
				}
				return
			}
			log.Info("product index rebuilt", "products", progress.nIndexed.Load(), "took", time.Since(start).Round(time.Millisecond).String())
		}()
	}
	return c, nil
}

// importGCPercent is the Go collector's target while an import or a
// rebuild runs: the heap grows 25 % past what is live instead of 100 %.
// Measured with a 200 000-row feed through the API (2 cores): a peak of
// 401 MiB RSS with the default, 312 MiB with 50, 271 MiB with 25, in about
// the same time (the collector runs beside the import on the other core).
// Imports are rare and one at a time; ingestion meanwhile pays some GC CPU.
const importGCPercent = 25

// lowGC lowers the collector's target for an import and returns what puts
// it back.
func lowGC() (restore func()) { return resident.LowGC(importGCPercent) }

// RebuildingError means the search index is being rebuilt (after a crash
// during indexing or a damaged index): searches work again when it is done.
type RebuildingError struct {
	Indexed, Total int64
}

func (e *RebuildingError) Error() string {
	return fmt.Sprintf("catalog: the product index is being rebuilt (%d of %d products); search works again when it is done", e.Indexed, e.Total)
}

// ErrRebuilding matches a *RebuildingError with errors.Is.
var ErrRebuilding = errors.New("catalog: the product index is being rebuilt")

func (e *RebuildingError) Is(target error) bool { return target == ErrRebuilding }

// rebuildErr is a *RebuildingError while the index is rebuilt, nil after.
func (c *Catalog) rebuildErr() error {
	p := c.rebuilding.Load()
	if p == nil {
		return nil
	}
	return &RebuildingError{Indexed: p.nIndexed.Load(), Total: p.toIdx.Load()}
}

// Close stops a running import (it is discarded: the catalogue stays as it
// was), waits for it, and closes the index.
func (c *Catalog) Close() error {
	c.closeOnce.Do(func() { close(c.closing) })
	c.importing.Lock() // the running import, if any, has ended
	defer c.importing.Unlock()
	c.jobsDone.Wait() // and its job has recorded so (no job starts while we hold importing)
	return c.idx.Close()
}

// ImportOptions changes how an import goes.
type ImportOptions struct {
	// Force imports a feed with no rows, or one that would remove more than
	// half of the catalogue; without it such a feed is refused (a broken
	// export must not empty the shop's catalogue).
	Force bool

	job *jobState // progress, for imports run as jobs
}

// ErrRefused means an import was refused as suspicious: the catalogue is
// unchanged; ImportOptions.Force imports it anyway.
var ErrRefused = errors.New("catalog: import refused")

// Import reads a full feed and replaces the catalogue with it: all or
// nothing. Rows with problems are skipped and reported by line; products
// missing from the feed are kept, marked removed. The report is stored and
// returned, also when the import fails as a whole. A feed with no rows or
// one that would remove more than half of the products is refused
// (ErrRefused); ImportWith with Force imports it.
func (c *Catalog) Import(r io.Reader, source string) (feed.Report, error) {
	return c.ImportWith(r, source, ImportOptions{})
}

// ImportWith is Import with options.
func (c *Catalog) ImportWith(r io.Reader, source string, o ImportOptions) (feed.Report, error) {
	rep := feedReport(source, c.now().UTC())
	if err := c.canWrite(); err != nil {
		return rep, err
	}
	if !c.importing.TryLock() {
		return rep, ErrBusy
	}
	defer c.importing.Unlock()
	return c.importLocked(r, rep, o)
}

// feedReport starts the report of an import.
func feedReport(source string, started time.Time) feed.Report {
	return feed.Report{Source: redact.Text(source), Started: started, Errors: []feed.LineError{}}
}

// importLocked runs an import; the caller holds c.importing.
func (c *Catalog) importLocked(r io.Reader, rep feed.Report, o ImportOptions) (feed.Report, error) {
	if err := c.stopped(); err != nil {
		return rep, err // closed: the store may be closed too
	}
	defer lowGC()()
	st, err := c.st.StageCatalogue()
	if err != nil {
		return rep, err
	}
	fail := func(err error) (feed.Report, error) {
		st.Discard()
		rep.Finished, rep.Failure = c.now().UTC(), redact.Error(err)
		if serr := c.st.SaveFeedReport(rep); serr != nil {
			c.log.Error("store the feed report", "err", redact.Error(serr))
		}
		return rep, err
	}
	o.job.phase("reading")
	links, err := feed.ReadWith(c.cancellable(r), feed.Options{Columns: c.columns, URLTemplate: c.urlTmpl, Now: c.now}, &rep, func(p model.Product) error {
		rep.Imported++
		if p.MainID != "" {
			rep.Variations++
		}
		o.job.row()
		return st.Put(p)
	})
	if err != nil {
		return fail(err)
	}
	if links.Pending {
		o.job.phase("linking")
		if err := settle(st, links, &rep, c.stopped); err != nil {
			return fail(err)
		}
		if err := c.stopped(); err != nil {
			return fail(err)
		}
	}
	rep.Finish(c.urlTmpl)
	if !o.Force {
		o.job.phase("checking")
		if rep.Rows == 0 {
			return fail(fmt.Errorf("%w: the feed has a header but no rows; importing it would remove every product (force=true imports it anyway)", ErrRefused))
		}
		active := c.Count()
		removing, err := st.WouldRemove()
		if err != nil {
			return fail(err)
		}
		if active > 0 && removing*2 > active {
			return fail(fmt.Errorf("%w: the feed would remove %d of the %d products, more than half (force=true imports it anyway)", ErrRefused, removing, active))
		}
	}
	if c.rec != nil {
		// what changed for shoppers, staged to become facts in the log
		// with the switch to the new catalogue
		o.job.phase("comparing")
		if _, err := c.stageFacts(st); err != nil {
			return fail(err)
		}
	}
	o.job.phase("committing")
	rep.Finished = c.now().UTC()
	removed, err := st.Commit(&rep)
	rep.Removed = removed
	if err != nil {
		return rep, err
	}
	if removed > 0 {
		// the stored report was written before the count was known
		c.st.SaveFeedReport(rep)
	}
	o.job.phase("indexing")
	ierr := c.reindex(st.Generation(), true, o.job)
	// the changes go to the log once the products are searchable: they
	// wait in the store meanwhile, and after a crash until the next start
	o.job.phase("recording")
	if err := c.recordFacts(); err != nil {
		c.log.Error("record the import's changes", "err", err)
	}
	if ierr != nil {
		return rep, fmt.Errorf("catalog: index: %w", ierr)
	}
	c.log.Info("feed imported", "source", rep.Source, "imported", rep.Imported, "skipped", rep.Skipped, "removed", removed)
	return rep, nil
}

// reindex rebuilds the family map from generation gen and, with rebuild,
// the search index too. It reads the products twice rather than holding
// them: the first pass (scan) keeps a few fields of each variation, the
// second (index) streams the main products to the index with what their
// variations add. (Holding every product and document took 480 MB of RSS
// for 200 000.)
func (c *Catalog) reindex(gen uint64, rebuild bool, job *jobState) error {
	sh, extras, mains, err := c.scan(gen)
	if err != nil {
		return err
	}
	c.shape.Store(sh)
	if !rebuild {
		return nil
	}
	job.toIndex(mains)
	return c.index(gen, extras, job)
}

// extra is what variations add to their main product's document.
type extra struct {
	colors  []string
	inStock bool
	price   int64 // the lowest, -1 for none
}

// scan reads generation gen: the catalogue's shape, what variations add to
// their main products, and how many main products there are.
func (c *Catalog) scan(gen uint64) (*shape, map[string]*extra, int, error) {
	type variation struct {
		id, main, color       string
		inStock, removed, off bool // off: not published (a disabled variation)
		price                 int64
	}
	sh := &shape{families: map[string][]string{}, mainOf: map[string]string{}, known: map[string]bool{}}
	var variations []variation
	active := map[string]bool{} // main products not removed
	err := c.st.ScanProducts(gen, func(p model.Product) error {
		sh.known[p.ID] = true
		if !p.Removed {
			sh.count++
		}
		switch {
		case p.MainID != "":
			variations = append(variations, variation{id: p.ID, main: p.MainID, color: p.Color, inStock: p.InStock(), removed: p.Removed,
				price: p.EffectivePrice(), off: !p.Published()})
		case !p.Removed:
			active[p.ID] = true
		}
		return nil
	})
	if err != nil {
		return nil, nil, 0, err
	}
	extras := map[string]*extra{}
	for _, v := range variations {
		if !active[v.main] || v.removed {
			continue // an orphan variation: found by ID, not by search
		}
		sh.families[v.main] = append(sh.families[v.main], v.id)
		sh.mainOf[v.id] = v.main
		if v.off {
			continue // shoppers never see it: its colour, stock and price do not count
		}
		e := extras[v.main]
		if e == nil {
			e = &extra{price: -1}
			extras[v.main] = e
		}
		if v.color != "" && !slices.Contains(e.colors, v.color) {
			e.colors = append(e.colors, v.color)
		}
		e.inStock = e.inStock || v.inStock
		if e.price < 0 || v.price < e.price {
			e.price = v.price
		}
	}
	return sh, extras, len(active), nil
}

// index builds the search index of generation gen and switches to it.
func (c *Catalog) index(gen uint64, extras map[string]*extra, job *jobState) error {
	return c.idx.Replace(gen, func(add func(search.Doc) error) error {
		return c.st.ScanProducts(gen, func(p model.Product) error {
			if p.MainID != "" || p.Removed {
				return nil
			}
			if err := c.stopped(); err != nil {
				return err
			}
			d := docOf(p)
			if e := extras[p.ID]; e != nil {
				for _, col := range e.colors {
					if !slices.Contains(d.Colors, col) {
						d.Colors = append(d.Colors, col)
					}
				}
				d.InStock = d.InStock || e.inStock
				if price := float64(e.price) / 100; e.price >= 0 && price < d.Price {
					d.Price = price
				}
			}
			if err := add(*d); err != nil {
				return err
			}
			job.indexed()
			return nil
		})
	})
}

func docOf(p model.Product) *search.Doc {
	d := &search.Doc{ID: p.ID, Title: p.Title, Description: model.PlainText(p.Description), Brand: p.Brand,
		Categories: p.Categories, CategoryIDs: p.CategoryIDs, Price: float64(p.EffectivePrice()) / 100, InStock: p.InStock(),
		NotInSearch: !p.Searchable(), NotInRecommendations: !p.Recommendable(), Status: statusOf(p), Visibility: visibilityOf(p)}
	if p.Color != "" {
		d.Colors = []string{p.Color}
	}
	return d
}

// statusOf is a product's status, "published" for catalogues imported
// before statuses existed.
func statusOf(p model.Product) string {
	if p.Status == "" {
		return model.StatusPublished
	}
	return p.Status
}

func visibilityOf(p model.Product) string {
	if p.Visibility == "" {
		return model.VisibilityVisible
	}
	return p.Visibility
}

// Item is a product with its variations, as the API shows it.
type Item struct {
	model.Product
	Variations []model.Product `json:"variations,omitempty"`
	// InSearch and InRecommendations say whether shoppers' searches and
	// recommendations show the product (not when it is hidden, not
	// published, or removed).
	InSearch          bool `json:"inSearch"`
	InRecommendations bool `json:"inRecommendations"`
}

// Product returns a product and all its variations, hidden or not.
func (c *Catalog) Product(id string) (Item, error) {
	items, err := c.items([]string{id}, true)
	if err == nil && len(items) == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return Item{}, err
	}
	return items[0], nil
}

// items loads products and their variations in one read; IDs no longer in
// the catalogue are left out. Without everything, variations that are not
// published are left out too (what shoppers may see).
func (c *Catalog) items(ids []string, everything bool) ([]Item, error) {
	families := c.shape.Load().families
	all := slices.Clone(ids)
	for _, id := range ids {
		all = append(all, families[id]...)
	}
	ps, err := c.st.Products(all)
	if err != nil {
		return nil, err
	}
	out := []Item{}
	for _, id := range ids {
		p, ok := ps[id]
		if !ok {
			continue
		}
		it := Item{Product: p, InSearch: p.Searchable(), InRecommendations: p.Recommendable()}
		it.Status, it.Visibility = statusOf(p), visibilityOf(p)
		for _, vid := range families[id] {
			if v, ok := ps[vid]; ok && (everything || v.Published()) {
				v.Status, v.Visibility = statusOf(v), visibilityOf(v)
				it.Variations = append(it.Variations, v)
			}
		}
		out = append(out, it)
	}
	return out, nil
}

// Search finds main products, with their variations.
func (c *Catalog) Search(q search.Query) ([]Item, search.Result, error) {
	if err := c.rebuildErr(); err != nil {
		return nil, search.Result{}, err
	}
	res, err := c.idx.Search(q)
	if err != nil {
		return nil, res, err
	}
	items, err := c.items(res.IDs, q.For == search.ForAdmin)
	return items, res, err
}

// mainProduct returns the product id, or its main product when it is a
// variation.
func (c *Catalog) mainProduct(id string) (model.Product, error) {
	p, err := c.st.Product(id)
	if err != nil || p.MainID == "" {
		return p, err
	}
	if m, err := c.st.Product(p.MainID); err == nil {
		return m, nil
	}
	return p, nil // an orphan variation
}

// Similar returns products like the product id (or its main product).
func (c *Catalog) Similar(id string, limit int) ([]Item, error) {
	if err := c.rebuildErr(); err != nil {
		return nil, err
	}
	p, err := c.mainProduct(id)
	if err != nil {
		return nil, err
	}
	ids, err := c.idx.Similar(*docOf(p), limit)
	if err != nil {
		return nil, err
	}
	return c.items(ids, false)
}

// TopInCategory returns in-stock products of the product's deepest (last)
// category, cheapest first, the product and its variations excluded.
func (c *Catalog) TopInCategory(id string, limit int) ([]Item, error) {
	if err := c.rebuildErr(); err != nil {
		return nil, err
	}
	p, err := c.mainProduct(id)
	if err != nil {
		return nil, err
	}
	if len(p.CategoryIDs) == 0 && len(p.Categories) == 0 {
		return []Item{}, nil
	}
	cat := ""
	if len(p.CategoryIDs) > 0 {
		cat = p.CategoryIDs[len(p.CategoryIDs)-1]
	} else {
		cat = p.Categories[len(p.Categories)-1]
	}
	res, err := c.idx.Search(search.Query{Category: cat, InStock: true, Sort: "price", Size: limit + 1, For: search.ForRecommendations})
	if err != nil {
		return nil, err
	}
	ids := slices.DeleteFunc(res.IDs, func(x string) bool { return x == p.ID })
	if len(ids) > limit {
		ids = ids[:limit]
	}
	return c.items(ids, false)
}

// Together returns the products most often viewed (kind
// store.ViewedTogether) or bought (store.BoughtTogether) together with the
// product id, as main products: counts of a family's variations add up.
func (c *Catalog) Together(kind store.PairKind, id string, limit int) ([]Item, error) {
	if _, err := c.st.Product(id); err != nil {
		return nil, err
	}
	sh := c.shape.Load()
	main := sh.main(id)
	family := append([]string{main}, sh.families[main]...)
	score := map[string]uint64{}
	for _, member := range family {
		counts, err := c.st.PairCounts(kind, member, 1000)
		if err != nil {
			return nil, err
		}
		for _, ct := range counts {
			if other := sh.main(ct.ID); other != main && sh.known[ct.ID] {
				score[other] += ct.Count
			}
		}
	}
	ids := make([]string, 0, len(score))
	for other := range score {
		ids = append(ids, other)
	}
	slices.SortFunc(ids, func(a, b string) int {
		if score[a] != score[b] {
			return int(score[b]) - int(score[a])
		}
		return strings.Compare(a, b)
	})
	items, err := c.items(ids, false)
	if err != nil {
		return nil, err
	}
	items = slices.DeleteFunc(items, func(it Item) bool { return !it.InRecommendations })
	if len(items) > limit {
		items = items[:limit]
	}
	return items, nil
}

// Report returns the report of the last import.
func (c *Catalog) Report() (feed.Report, error) {
	var r feed.Report
	err := c.st.FeedReport(&r)
	return r, err
}
