package campaign

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/channel"
	"github.com/shoptrail/shoptrail/engine/store"
)

// Catalog is what product blocks and the category condition read
// (*catalog.Catalog).
type Catalog interface {
	Product(id string) (catalog.Item, error)
	Similar(id string, limit int) ([]catalog.Item, error)
	TopInCategory(id string, limit int) ([]catalog.Item, error)
	Together(kind store.PairKind, id string, limit int) ([]catalog.Item, error)
}

// Options configures a Service.
type Options struct {
	Segments Segments // nil: segment conditions are refused on save
	Catalog  Catalog  // nil: product blocks render nothing
	Sites    func() channel.Sites
	Now      func() time.Time
	Logger   *slog.Logger
}

// Service keeps the campaigns: CRUD, status changes, and an in-memory
// snapshot of the active ones that decisions read without touching Badger.
type Service struct {
	st   *store.Store
	o    Options
	mu   sync.Mutex // serialises writes with the snapshot they leave
	snap atomic.Pointer[snapshot]

	blocksMu sync.RWMutex           // every decision with a block reads; a render a minute writes
	blocks   map[string]cachedBlock // rendered product blocks (blocks.go)
}

// snapshot is the campaigns as decisions see them.
type snapshot struct {
	active []*compiled
	known  map[string]bool // every campaign id, for the projection
	hide   []string        // selectors of the active campaigns' placements
	css    string          // HideCSS(hide)
}

// compiled is an active campaign with its conditions parsed and what its
// decisions need worked out once: the groups' keys in the shopper state,
// the variations' product blocks and the JSON of what they show.
type compiled struct {
	Campaign
	conds [][]compiledCond   // per group
	keys  []string           // per group: groupKey(ID, group)
	vars  [][]*compiledShown // per group, per variation
}

// compiledShown is one variation as decisions show it: the Shown without
// the content, its JSON around the content, and the content split at its
// product blocks.
type compiledShown struct {
	shown  Shown
	pre    []byte // the JSON object up to where "html" goes
	post   []byte // and from there to its end
	parts  []string
	blocks []Block
}

type compiledCond struct {
	Condition
	re       *regexp.Regexp
	num      float64
	from, to int       // time_of_day in minutes
	d0, d1   time.Time // date range, [d0, d1)
}

// New loads the campaigns.
func New(st *store.Store, o Options) (*Service, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Sites == nil {
		o.Sites = func() channel.Sites { return channel.Sites{} }
	}
	s := &Service{st: st, o: o}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// reload rebuilds the snapshot from the store.
func (s *Service) reload() error {
	sn := &snapshot{known: map[string]bool{}}
	err := s.st.Campaigns(func(id string, b []byte) error {
		sn.known[id] = true
		var c Campaign
		if err := json.Unmarshal(b, &c); err != nil {
			return fmt.Errorf("campaign %s: %w", id, err)
		}
		if c.Status != StatusActive {
			return nil
		}
		cc, err := compile(c)
		if err != nil {
			s.o.Logger.Error("campaign left out: it does not compile", "campaign", id, "err", err)
			return nil
		}
		sn.active = append(sn.active, cc)
		for _, g := range c.Groups {
			if sel := g.Placement.Selector; sel != "" && !slices.Contains(sn.hide, sel) {
				sn.hide = append(sn.hide, sel)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("campaign: load: %w", err)
	}
	sn.css = HideCSS(sn.hide)
	s.snap.Store(sn)
	return nil
}

func compile(c Campaign) (*compiled, error) {
	cc := &compiled{Campaign: c}
	for gi, g := range c.Groups {
		cc.keys = append(cc.keys, groupKey(c.ID, gi))
		var vars []*compiledShown
		for _, v := range g.Variations {
			cs, err := compileShown(Shown{Campaign: c.ID, Group: gi, Variation: v.Name, Control: v.Control,
				Selector: g.Placement.Selector, Mode: g.Placement.Mode, Trigger: g.Trigger, Goal: g.Goal,
				PerSession: g.Limits.PerSession}, v)
			if err != nil {
				return nil, err
			}
			vars = append(vars, cs)
		}
		cc.vars = append(cc.vars, vars)
		var conds []compiledCond
		for _, cd := range g.Conditions {
			k := compiledCond{Condition: cd}
			v := string(cd.Value)
			var err error
			switch cd.Kind {
			case "url":
				switch cd.Op {
				case "regex":
					k.re, err = regexp.Compile(v)
				case "wildcard":
					k.re, err = regexp.Compile("^" + wildcardRE(v) + "$")
				}
			case "cart_value", "cart_items", "impressions_session", "impressions_user":
				_, err = fmt.Sscan(v, &k.num)
			case "time_of_day":
				k.from, k.to, err = parseClockRange(v)
			case "date":
				if cd.Op == "between" {
					k.d0, k.d1, err = parseDateRange(v)
				} else {
					k.d0, err = time.Parse(time.DateOnly, v)
				}
			}
			if err != nil {
				return nil, err
			}
			conds = append(conds, k)
		}
		cc.conds = append(cc.conds, conds)
	}
	return cc, nil
}

// htmlMark stands for the content while the rest of a Shown is encoded.
const htmlMark = "\x00"

// compileShown encodes sh (what a decision shows of v) once, with
// encoding/json, around the place of the content, which is filled per
// decision (product blocks depend on the page).
func compileShown(sh Shown, v Variation) (*compiledShown, error) {
	cs := &compiledShown{shown: sh}
	if !v.Control {
		cs.parts, cs.blocks = Blocks(v.HTML)
	}
	sh.HTML = htmlMark
	b, err := json.Marshal(sh)
	if err != nil {
		return nil, err
	}
	// a quote inside a JSON string is escaped, so this is the field
	field := []byte(`,"html":"\u0000"`)
	i := bytes.Index(b, field)
	if i < 0 {
		return nil, fmt.Errorf("campaign: encode %s/%d/%s: no html field", sh.Campaign, sh.Group, sh.Variation)
	}
	cs.pre, cs.post = b[:i], b[i+len(field):]
	return cs, nil
}

// HideCSS is the rule that hides selectors until the decision is in: one
// rule per selector, so that a selector a browser does not understand
// drops only its own rule. Selectors were checked on save: no braces or <.
func HideCSS(sels []string) string {
	var b strings.Builder
	for _, sel := range sels {
		b.WriteString(sel)
		b.WriteString("{opacity:0!important}")
	}
	return b.String()
}

// wildcardRE turns a pattern with * into a regular expression.
func wildcardRE(p string) string {
	var out []byte
	for _, part := range regexp.MustCompile(`\*`).Split(p, -1) {
		if out != nil {
			out = append(out, ".*"...)
		} else {
			out = []byte{}
		}
		out = append(out, regexp.QuoteMeta(part)...)
	}
	return string(out)
}

// Known reports whether a campaign with that id exists (any status).
func (s *Service) Known(id string) bool { return s.snap.Load().known[id] }

// Hide returns the selectors of the active campaigns' placements.
func (s *Service) Hide() []string { return s.snap.Load().hide }

// Active returns how many campaigns are active.
func (s *Service) Active() int { return len(s.snap.Load().active) }

// Prepare normalises, validates and sanitises a campaign as it would be
// saved; the preview uses it for drafts.
func (s *Service) Prepare(c *Campaign) error {
	c.Normalise()
	if err := c.Validate(s.o.Segments); err != nil {
		return err
	}
	return c.SanitiseCampaign()
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Create stores a new campaign; the id and times are the server's.
func (s *Service) Create(c Campaign) (Campaign, error) {
	if err := s.Prepare(&c); err != nil {
		return Campaign{}, err
	}
	c.ID = newID()
	c.CreatedAt = s.o.Now().UTC()
	c.UpdatedAt = c.CreatedAt
	return c, s.put(c)
}

func (s *Service) put(c Campaign) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.PutCampaign(c.ID, b); err != nil {
		return err
	}
	return s.reload()
}

// Get returns a campaign.
func (s *Service) Get(id string) (Campaign, error) {
	var c Campaign
	b, err := s.st.Campaign(id)
	if errors.Is(err, store.ErrNotFound) {
		return c, ErrNotFound
	}
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(b, &c)
}

// List returns every campaign, newest first; archived ones only with
// archived set.
func (s *Service) List(archived bool) ([]Campaign, error) {
	out := []Campaign{}
	err := s.st.Campaigns(func(id string, b []byte) error {
		var c Campaign
		if err := json.Unmarshal(b, &c); err != nil {
			return fmt.Errorf("campaign %s: %w", id, err)
		}
		if c.Status != StatusArchived || archived {
			out = append(out, c)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Campaign) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, err
}

// Update replaces a campaign's content (name, status, groups).
// A body without status keeps the campaign's.
func (s *Service) Update(id string, c Campaign) (Campaign, error) {
	keep := c.Status == ""
	if keep {
		c.Status = StatusDraft // checked below against the stored one
	}
	if err := s.Prepare(&c); err != nil {
		return Campaign{}, err
	}
	defer s.st.Lock("campaign", id)()
	old, err := s.Get(id)
	if err != nil {
		return Campaign{}, err
	}
	c.ID, c.CreatedAt, c.UpdatedAt = id, old.CreatedAt, s.o.Now().UTC()
	if keep {
		c.Status = old.Status
	}
	return c, s.put(c)
}

// SetStatus changes a campaign's status.
func (s *Service) SetStatus(id, status string) (Campaign, error) {
	if !slices.Contains(statuses, status) || status == StatusDraft {
		return Campaign{}, &FieldError{Path: "status", Message: "status must be active, paused or archived"}
	}
	defer s.st.Lock("campaign", id)()
	c, err := s.Get(id)
	if err != nil {
		return Campaign{}, err
	}
	if status == StatusActive {
		// a campaign saved before a change of what is valid (segments
		// gone) must not go live unchecked
		if err := c.Validate(s.o.Segments); err != nil {
			return Campaign{}, err
		}
	}
	c.Status, c.UpdatedAt = status, s.o.Now().UTC()
	return c, s.put(c)
}

// Delete removes a campaign. Its events stay in the log.
func (s *Service) Delete(id string) error {
	defer s.st.Lock("campaign", id)()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.st.DeleteCampaign(id)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return s.reload()
}
