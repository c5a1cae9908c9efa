package campaign

import (
	_ "embed"
	"html/template"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/store"
)

// cards renders product cards: the feed's URL, first photo, title and
// price. html/template escapes every field of the feed.
var cards = template.Must(template.New("cards").Funcs(template.FuncMap{
	"price": func(p model.Product) string {
		cur := p.Currency
		if cur == "" {
			cur = "EUR"
		}
		return model.FormatMinor(p.EffectivePrice(), cur) + " " + cur
	},
	"photo": func(p model.Product) string {
		if len(p.Photos) > 0 {
			return p.Photos[0]
		}
		return ""
	},
}).Parse(`<div class="shoptrail-products">{{range .}}<a class="shoptrail-product" href="{{.URL}}" data-product-id="{{.ID}}">` +
	`{{with photo .}}<img src="{{.}}" alt="" loading="lazy">{{end}}<span class="shoptrail-product-title">{{.Title}}</span> ` +
	`<span class="shoptrail-product-price">{{price .}}</span></a>{{end}}</div>`))

// Render fills the product blocks of sanitised content for a page that
// shows productID ("" on other pages): {{product "1001"}} becomes that
// product's card, {{recommend "similar" 4}} up to four cards of products
// like the one on the page (nothing on a page without a product, or when
// the catalogue has none).
func (s *Service) Render(content, productID string) string {
	parts, blocks := Blocks(content)
	return s.renderParts(parts, blocks, productID)
}

// renderParts is Render of content that Blocks split.
func (s *Service) renderParts(parts []string, blocks []Block, productID string) string {
	if len(blocks) == 0 {
		return parts[0]
	}
	var b strings.Builder
	for i, blk := range blocks {
		b.WriteString(parts[i])
		b.WriteString(s.block(blk, productID))
	}
	b.WriteString(parts[len(parts)-1])
	return b.String()
}

// blockTTL is how long a rendered product block is reused: the catalogue
// changes with a feed import, not between two page views.
const blockTTL = time.Minute

// maxCachedBlocks bounds the cache of rendered blocks.
const maxCachedBlocks = 10000

type cachedBlock struct {
	html    string
	expires time.Time
}

// block renders one product block, from the cache when it is fresh.
func (s *Service) block(blk Block, productID string) string {
	key := canonicalBlock(blk) + "\x00" + productID
	now := s.o.Now()
	s.blocksMu.RLock()
	c, ok := s.blocks[key]
	s.blocksMu.RUnlock()
	if ok && now.Before(c.expires) {
		return c.html
	}
	var b strings.Builder
	if items := s.blockItems(blk, productID); len(items) > 0 {
		ps := make([]model.Product, 0, len(items))
		for _, it := range items {
			ps = append(ps, it.Product)
		}
		if err := cards.Execute(&b, ps); err != nil {
			s.o.Logger.Warn("product block", "err", err)
			b.Reset()
		}
	}
	s.blocksMu.Lock()
	if s.blocks == nil || len(s.blocks) >= maxCachedBlocks {
		s.blocks = map[string]cachedBlock{}
	}
	s.blocks[key] = cachedBlock{html: b.String(), expires: now.Add(blockTTL)}
	s.blocksMu.Unlock()
	return b.String()
}

func (s *Service) blockItems(blk Block, productID string) []catalog.Item {
	c := s.o.Catalog
	if c == nil {
		return nil
	}
	var items []catalog.Item
	var err error
	switch {
	case blk.Kind == "product":
		var it catalog.Item
		if it, err = c.Product(blk.Arg); err == nil {
			items = []catalog.Item{it}
		}
	case productID == "":
		return nil
	case blk.Arg == "similar":
		items, err = c.Similar(productID, blk.Count)
	case blk.Arg == "top_in_category":
		items, err = c.TopInCategory(productID, blk.Count)
	case blk.Arg == "viewed_together":
		items, err = c.Together(store.ViewedTogether, productID, blk.Count)
	case blk.Arg == "bought_together":
		items, err = c.Together(store.BoughtTogether, productID, blk.Count)
	}
	if err != nil {
		return nil // a product gone from the feed shows no card
	}
	return items
}

// RendererJS is the campaign renderer: the head script's answer carries it
// on pages where a campaign applies (see README, "Onsite campaigns").
//
//go:embed render.js
var RendererJS string
