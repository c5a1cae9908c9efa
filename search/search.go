// Package search keeps the product catalogue searchable with Bleve: full
// text with typo tolerance, facets, filters, sorting, and similar products.
// The products live in Badger (the source of truth); this index is rebuilt
// from them whenever it is missing, damaged or behind. It depends on no
// other Shoptrail package.
package search

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
)

// Doc is what is indexed of a main product (its variations folded in).
type Doc struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Brand       string   `json:"brand"`
	Categories  []string `json:"categories"`
	CategoryIDs []string `json:"category_ids"`
	Colors      []string `json:"colors"`
	Price       float64  `json:"price"` // the lowest effective price, major units
	InStock     bool     `json:"in_stock"`
	// NotInSearch and NotInRecommendations keep a product out of shoppers'
	// searches and recommendations: a hidden or unpublished one is indexed
	// (the admin lists it) but filtered out when queried.
	NotInSearch          bool   `json:"not_in_search"`
	NotInRecommendations bool   `json:"not_in_recommendations"`
	Status               string `json:"status"`     // published, draft, private, archived, unpublished
	Visibility           string `json:"visibility"` // visible, catalog, search, hidden
}

// mappingVersion is written into every index; an index of another
// version (built before a field existed) is rebuilt from the store.
const mappingVersion = "2"

var versionKey = []byte("shoptrail_mapping_version")

// Index is the product index. It is safe for concurrent use.
type Index struct {
	dir string
	mu  sync.RWMutex
	idx bleve.Index
	gen uint64
}

const currentFile = "CURRENT"

// Open opens the index in dir, or an empty one when there is none or it is
// damaged: Generation then reports 0 and the caller rebuilds it.
func Open(dir string) (*Index, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	ix := &Index{dir: dir}
	name, err := os.ReadFile(filepath.Join(dir, currentFile))
	if err == nil {
		gen, perr := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(string(name)), "idx-"), 10, 64)
		idx, oerr := bleve.Open(filepath.Join(dir, strings.TrimSpace(string(name))))
		if perr == nil && oerr == nil {
			v, verr := idx.GetInternal(versionKey)
			if _, derr := idx.DocCount(); derr == nil && verr == nil && string(v) == mappingVersion {
				ix.idx, ix.gen = idx, gen
				return ix, nil
			}
			idx.Close()
		}
	}
	return ix, nil
}

// Generation is the catalogue generation the index holds, 0 for none.
func (ix *Index) Generation() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.gen
}

func newMapping() mapping.IndexMapping {
	text := bleve.NewTextFieldMapping()
	text.Analyzer = en.AnalyzerName
	text.IncludeTermVectors = false
	body := bleve.NewTextFieldMapping()
	body.Analyzer = en.AnalyzerName
	body.Store, body.IncludeTermVectors, body.IncludeInAll = false, false, false
	kw := bleve.NewKeywordFieldMapping()
	kw.Analyzer = keyword.Name
	kw.IncludeTermVectors = false
	num := bleve.NewNumericFieldMapping()
	boolean := bleve.NewBooleanFieldMapping()

	doc := bleve.NewDocumentStaticMapping()
	doc.AddFieldMappingsAt("title", text)
	doc.AddFieldMappingsAt("description", body)
	doc.AddFieldMappingsAt("brand", kw)
	doc.AddFieldMappingsAt("categories", kw)
	doc.AddFieldMappingsAt("category_ids", kw)
	doc.AddFieldMappingsAt("colors", kw)
	doc.AddFieldMappingsAt("price", num)
	doc.AddFieldMappingsAt("in_stock", boolean)
	doc.AddFieldMappingsAt("not_in_search", boolean)
	doc.AddFieldMappingsAt("not_in_recommendations", boolean)
	doc.AddFieldMappingsAt("status", kw)
	doc.AddFieldMappingsAt("visibility", kw)
	// the words of categories and brand count in free-text search too
	words := bleve.NewTextFieldMapping()
	words.Analyzer = en.AnalyzerName
	words.Store, words.IncludeTermVectors = false, false
	doc.AddFieldMappingsAt("category_words", words)
	sortKey := bleve.NewKeywordFieldMapping()
	sortKey.Analyzer = keyword.Name
	sortKey.Store, sortKey.IncludeTermVectors, sortKey.IncludeInAll, sortKey.DocValues = false, false, false, true
	doc.AddFieldMappingsAt("title_sort", sortKey)

	im := bleve.NewIndexMapping()
	im.DefaultMapping = doc
	im.DefaultAnalyzer = en.AnalyzerName
	im.ScoringModel = "bm25"
	return im
}

type indexed struct {
	Doc
	CategoryWords string `json:"category_words"`
	TitleSort     string `json:"title_sort"` // the title in lower case, one term: sorting by an analysed title sorts by its smallest word
}

// Replace builds a new index of generation gen from docs, in a new
// directory, and switches to it: searches keep using the old index until
// the new one is complete.
func (ix *Index) Replace(gen uint64, docs func(add func(Doc) error) error) error {
	name := "idx-" + strconv.FormatUint(gen, 10)
	path := filepath.Join(ix.dir, name)
	os.RemoveAll(path)
	idx, err := bleve.New(path, newMapping())
	if err != nil {
		return fmt.Errorf("search: create index: %w", err)
	}
	b := idx.NewBatch()
	add := func(d Doc) error {
		if err := b.Index(d.ID, indexed{d, strings.Join(append(append([]string{}, d.Categories...), d.Brand), " "), strings.ToLower(d.Title)}); err != nil {
			return err
		}
		if b.Size() >= 1000 {
			if err := idx.Batch(b); err != nil {
				return err
			}
			b.Reset()
		}
		return nil
	}
	if err := docs(add); err == nil && b.Size() > 0 {
		err = idx.Batch(b)
		if err != nil {
			idx.Close()
			os.RemoveAll(path)
			return fmt.Errorf("search: index: %w", err)
		}
	} else if err != nil {
		idx.Close()
		os.RemoveAll(path)
		return fmt.Errorf("search: index: %w", err)
	}
	if err := idx.SetInternal(versionKey, []byte(mappingVersion)); err != nil {
		idx.Close()
		os.RemoveAll(path)
		return fmt.Errorf("search: %w", err)
	}
	tmp := filepath.Join(ix.dir, currentFile+".tmp")
	if err := os.WriteFile(tmp, []byte(name+"\n"), 0o644); err != nil {
		idx.Close()
		return fmt.Errorf("search: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(ix.dir, currentFile)); err != nil {
		idx.Close()
		return fmt.Errorf("search: %w", err)
	}
	ix.mu.Lock()
	old, oldGen := ix.idx, ix.gen
	ix.idx, ix.gen = idx, gen
	ix.mu.Unlock()
	if old != nil {
		old.Close()
		if oldGen != gen {
			os.RemoveAll(filepath.Join(ix.dir, "idx-"+strconv.FormatUint(oldGen, 10)))
		}
	}
	return nil
}

// Close closes the index.
func (ix *Index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.idx == nil {
		return nil
	}
	err := ix.idx.Close()
	ix.idx = nil
	return err
}

// Query is a product search.
type Query struct {
	Text               string
	Category           string // a category title or ID
	Brand, Color       string
	MinPrice, MaxPrice *float64
	InStock            bool
	Sort               string // "" (relevance), "price", "-price", "title"
	Page, Size         int    // Page from 1
	// For is who asks: shoppers' search (the zero value) sees searchable
	// products only, recommendations recommendable ones, the admin all.
	For Audience
	// Status filters by status ("published", or "unpublished" for any
	// other); Visibility by visibility. For the admin.
	Status, Visibility string
}

// Audience is who a query is for.
type Audience int

// Audiences.
const (
	ForSearch Audience = iota
	ForRecommendations
	ForAdmin
)

// Result is a page of matching product IDs and the facets of all matches.
type Result struct {
	Total  uint64                 `json:"total"`
	IDs    []string               `json:"-"`
	Facets map[string][]FacetTerm `json:"facets"`
}

// FacetTerm is one value of a facet and how many products have it.
type FacetTerm struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// ErrNoIndex means no catalogue has been indexed yet.
var ErrNoIndex = errors.New("search: no catalogue indexed yet")

// Limits of the search text. A typo-tolerant word becomes an automaton
// whose size grows with the word: a 5 000-character word made Bleve fail
// ("dfa contains more than 10000 states") after 40 ms of work, so longer
// words are matched exactly and longer texts refused.
const (
	MaxTextLen   = 200 // characters of Query.Text
	MaxFuzzyWord = 30  // characters of a word matched with one typo allowed
)

// ErrTextTooLong means Query.Text is longer than MaxTextLen.
var ErrTextTooLong = fmt.Errorf("search: the search text may have at most %d characters", MaxTextLen)

// fuzziness is the typo tolerance for text: one typo, unless a word is
// too long for it.
func fuzziness(text string) int {
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }) {
		if utf8.RuneCountInString(w) > MaxFuzzyWord {
			return 0
		}
	}
	return 1
}

// Search runs q. Text matches title, categories and brand with one typo
// allowed per word ("runing shoes" finds running shoes), and the
// description exactly.
func (ix *Index) Search(q Query) (Result, error) {
	var must []query.Query
	if t := strings.TrimSpace(q.Text); t != "" {
		if utf8.RuneCountInString(t) > MaxTextLen {
			return Result{}, ErrTextTooLong
		}
		fuzzy := fuzziness(t)
		var words []query.Query
		for _, field := range []string{"title", "category_words", "description"} {
			m := bleve.NewMatchQuery(t)
			m.SetField(field)
			m.SetOperator(query.MatchQueryOperatorAnd)
			switch field {
			case "title":
				m.SetBoost(3)
				m.SetFuzziness(fuzzy)
			case "category_words":
				m.SetFuzziness(fuzzy)
			}
			words = append(words, m)
		}
		must = append(must, bleve.NewDisjunctionQuery(words...))
	}
	if q.Category != "" {
		must = append(must, bleve.NewDisjunctionQuery(term(q.Category, "categories"), term(q.Category, "category_ids")))
	}
	if q.Brand != "" {
		must = append(must, term(q.Brand, "brand"))
	}
	if q.Color != "" {
		must = append(must, term(q.Color, "colors"))
	}
	if q.MinPrice != nil || q.MaxPrice != nil {
		inclusive := true
		r := bleve.NewNumericRangeInclusiveQuery(q.MinPrice, q.MaxPrice, &inclusive, &inclusive)
		r.SetField("price")
		must = append(must, r)
	}
	if q.InStock {
		b := bleve.NewBoolFieldQuery(true)
		b.SetField("in_stock")
		must = append(must, b)
	}
	var mustNot []query.Query
	switch q.For {
	case ForSearch:
		mustNot = append(mustNot, flag("not_in_search"))
	case ForRecommendations:
		mustNot = append(mustNot, flag("not_in_recommendations"))
	}
	switch q.Status {
	case "":
	case "unpublished":
		mustNot = append(mustNot, term("published", "status"))
	default:
		must = append(must, term(q.Status, "status"))
	}
	if q.Visibility != "" {
		must = append(must, term(q.Visibility, "visibility"))
	}
	var root query.Query = bleve.NewMatchAllQuery()
	if len(must) > 0 {
		root = bleve.NewConjunctionQuery(must...)
	}
	if len(mustNot) > 0 {
		b := bleve.NewBooleanQuery()
		b.AddMust(root)
		b.AddMustNot(mustNot...)
		root = b
	}
	size := q.Size
	if size <= 0 || size > 100 {
		size = 20
	}
	page := max(q.Page, 1)
	req := bleve.NewSearchRequestOptions(root, size, (page-1)*size, false)
	switch q.Sort {
	case "price":
		req.SortBy([]string{"price", "_id"})
	case "-price":
		req.SortBy([]string{"-price", "_id"})
	case "title":
		req.SortBy([]string{"title_sort", "_id"})
	default:
		if strings.TrimSpace(q.Text) == "" {
			req.SortBy([]string{"_id"}) // no relevance to rank by: a stable order
		}
		// with text: Bleve's default, score descending
	}
	for _, f := range []string{"brand", "colors", "categories"} {
		req.AddFacet(f, bleve.NewFacetRequest(f, 20))
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.idx == nil {
		return Result{}, ErrNoIndex
	}
	res, err := ix.idx.Search(req)
	if err != nil {
		return Result{}, fmt.Errorf("search: %w", err)
	}
	out := Result{Total: res.Total, Facets: map[string][]FacetTerm{}}
	for _, h := range res.Hits {
		out.IDs = append(out.IDs, h.ID)
	}
	for name, f := range res.Facets {
		terms := []FacetTerm{}
		if f.Terms != nil {
			for _, t := range f.Terms.Terms() {
				terms = append(terms, FacetTerm{t.Term, t.Count})
			}
		}
		out.Facets[name] = terms
	}
	return out, nil
}

func flag(field string) query.Query {
	b := bleve.NewBoolFieldQuery(true)
	b.SetField(field)
	return b
}

func term(v, field string) query.Query {
	t := bleve.NewTermQuery(v)
	t.SetField(field)
	return t
}

// Similar returns up to limit products like d: sharing words of its title,
// its categories or brand, in a price band of half to twice its price, in
// stock, recommendable, not d itself.
func (ix *Index) Similar(d Doc, limit int) ([]string, error) {
	var should []query.Query
	if d.Title != "" {
		m := bleve.NewMatchQuery(d.Title)
		m.SetField("title")
		m.SetBoost(2)
		should = append(should, m)
	}
	for _, c := range d.Categories {
		t := term(c, "categories").(*query.TermQuery)
		t.SetBoost(1.5)
		should = append(should, t)
	}
	if d.Brand != "" {
		should = append(should, term(d.Brand, "brand"))
	}
	if len(should) == 0 {
		return nil, nil
	}
	lo, hi := d.Price/2, d.Price*2
	inclusive := true
	band := bleve.NewNumericRangeInclusiveQuery(&lo, &hi, &inclusive, &inclusive)
	band.SetField("price")
	stock := bleve.NewBoolFieldQuery(true)
	stock.SetField("in_stock")
	b := bleve.NewBooleanQuery()
	b.AddMust(band, stock)
	b.AddMustNot(flag("not_in_recommendations"))
	b.AddShould(should...)
	b.SetMinShould(1)
	b.AddMustNot(bleve.NewDocIDQuery([]string{d.ID}))
	req := bleve.NewSearchRequestOptions(b, limit, 0, false)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.idx == nil {
		return nil, ErrNoIndex
	}
	res, err := ix.idx.Search(req)
	if err != nil {
		return nil, fmt.Errorf("search: similar: %w", err)
	}
	var ids []string
	for _, h := range res.Hits {
		ids = append(ids, h.ID)
	}
	return ids, nil
}
