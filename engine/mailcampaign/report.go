package mailcampaign

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/attribution"
	"github.com/shoptrail/shoptrail/engine/channel"
	"github.com/shoptrail/shoptrail/engine/mail"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/project"
	"github.com/shoptrail/shoptrail/engine/store"
)

// AttributionWindow is how long after a click in an email an order counts
// for the email's campaign or automation (and after a message, an
// unsubscribe).
const AttributionWindow = 7 * 24 * time.Hour

// reportSpace is the reports projection's space.
var reportSpace = store.ProjectionSpace("emailreports")

// Stats are the counts of a campaign or an automation.
type Stats struct {
	Sent          int64            `json:"sent"`
	Delivered     int64            `json:"delivered"`
	Bounced       int64            `json:"bounced"`
	Complaints    int64            `json:"complaints"`
	Opens         int64            `json:"unique_opens"`         // people who opened, by a person's mail app
	MachineOpens  int64            `json:"unique_machine_opens"` // opened only by a proxy (Apple MPP, scanners)
	Clicks        int64            `json:"clicks"`
	UniqueClicks  int64            `json:"unique_clicks"`
	Unsubscribes  int64            `json:"unsubscribes"`
	Orders        int64            `json:"orders"`
	Revenue       map[string]int64 `json:"revenue"` // minor units by currency, saturating
	LastEventTime time.Time        `json:"last_event_at,omitzero"`
}

// Link is a link's clicks.
type Link struct {
	URL    string `json:"url"`
	Clicks int64  `json:"clicks"`
}

// Report is what a campaign's report page shows.
type Report struct {
	Campaign Campaign `json:"campaign"`
	Stats
	TopLinks []Link `json:"top_links"`
	// Daily opens and clicks (UTC days) for the chart.
	Days []Day `json:"days"`
	// Attribution says how orders were counted.
	Attribution string `json:"attribution"`
	// Attributed are the orders of the 7 days after the send credited to
	// the email by the attribution models (nil before sending starts).
	Attributed *Attributed `json:"attributed,omitempty"`
}

// AttributedModels are the models a campaign's report credits it with.
var AttributedModels = []attribution.Model{attribution.LastNonDirect, attribution.Linear}

// Attributed is what the attribution models credit a campaign with: the
// orders placed within AttributionWindow after sending started whose path
// (the touchpoints of the lookback before the order) holds a visit from
// one of the campaign's tagged links (channel Email, utm_campaign its id).
type Attributed struct {
	From    time.Time               `json:"from"`
	To      time.Time               `json:"to"`
	Orders  int64                   `json:"orders"`  // orders with the email on their path
	Revenue map[string]int64        `json:"revenue"` // their total, minor units by currency
	Models  map[string]ModelRevenue `json:"models"`  // by model: last_non_direct, linear
}

// ModelRevenue is one model's credit to the email.
type ModelRevenue struct {
	Orders  float64          `json:"orders"`  // fractions of orders
	Revenue map[string]int64 `json:"revenue"` // minor units by currency, saturating
}

// attributed credits a campaign that started sending.
func (s *Service) attributed(c Campaign) (*Attributed, error) {
	if c.Started.IsZero() {
		return nil, nil
	}
	from := c.Started
	q := attribution.TouchQuery{From: from, To: from.Add(AttributionWindow), Lookback: s.o.Lookback, Models: AttributedModels,
		Match: func(t attribution.Touch) bool {
			return t.Channel == channel.Email && t.Campaign == c.ID && !t.Time.Before(from)
		}}
	tc, err := attribution.CreditTouches(s.st, q)
	if err != nil {
		return nil, err
	}
	a := &Attributed{From: q.From.UTC(), To: q.To.UTC(), Orders: tc.Orders, Revenue: tc.Value, Models: map[string]ModelRevenue{}}
	for m, mc := range tc.Models {
		a.Models[string(m)] = ModelRevenue{Orders: math.Round(mc.Orders*10000) / 10000, Revenue: mc.Minor}
	}
	return a, nil
}

// Day is one day of the chart.
type Day struct {
	Day    string `json:"day"`
	Opens  int64  `json:"opens"`
	Clicks int64  `json:"clicks"`
	Orders int64  `json:"orders"`
}

// touch is the last email a profile was sent or clicked.
type touch struct {
	Tag string    `json:"tag"`
	At  time.Time `json:"at"`
}

// Tag of a campaign's or automation's counts.
func CampaignTag(id string) string     { return "c:" + id }
func AutomationTag(name string) string { return "a:" + name }

// ReportProjection folds the email_* events of campaigns and automations
// (their campaign and automation props), unsubscribes and orders into
// their reports.
func ReportProjection() *project.Projection {
	return &project.Projection{
		Name:    "emailreports",
		Version: 1,
		Owns:    []store.Space{reportSpace},
		Fold:    foldReports,
		Move:    moveReports,
		Erase:   eraseReports,
	}
}

func propString(ev *model.Event, k string) string {
	var s string
	if raw, ok := ev.Props[k]; ok {
		json.Unmarshal(raw, &s)
	}
	return s
}

func tagOf(ev *model.Event) string {
	if c := propString(ev, "campaign"); c != "" {
		return CampaignTag(c)
	}
	if a := propString(ev, "automation"); a != "" {
		return AutomationTag(a)
	}
	return ""
}

func getStats(tx *store.Tx, tag string) (Stats, error) {
	var s Stats
	err := tx.Get(reportSpace, "s/"+tag, &s)
	if errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	return s, err
}

// once reports whether (profile, tag, kind) is new, and marks it.
func once(tx *store.Tx, profile, tag, kind string) (bool, error) {
	k := "p/" + profile + "/" + tag + "/" + kind
	if ok, err := tx.Has(reportSpace, k); err != nil || ok {
		return false, err
	}
	return true, tx.Set(reportSpace, k, 1)
}

func addDay(tx *store.Tx, tag string, at time.Time, f func(d *Day)) error {
	k := "d/" + tag + "/" + at.UTC().Format("2006-01-02")
	var d Day
	if err := tx.Get(reportSpace, k, &d); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	d.Day = at.UTC().Format("2006-01-02")
	f(&d)
	return tx.Set(reportSpace, k, d)
}

func foldReports(r *project.Run) error {
	tx := r.Tx
	for _, e := range r.Events {
		ev := e.Event
		if e.ProfileID == "" {
			continue
		}
		tag := tagOf(ev)
		switch {
		case tag != "" && strings.HasPrefix(ev.Type, "email_"):
			if err := foldEmail(tx, e.ProfileID, tag, ev); err != nil {
				return err
			}
		case ev.Type == model.Unsubscribe:
			var t touch
			if err := tx.Get(reportSpace, "ls/"+e.ProfileID, &t); errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if ev.Time.Sub(t.At) > AttributionWindow {
				continue
			}
			if first, err := once(tx, e.ProfileID, t.Tag, "unsub"); err != nil || !first {
				return err
			}
			if err := bump(tx, t.Tag, ev.Time, func(s *Stats) { s.Unsubscribes++ }); err != nil {
				return err
			}
		case ev.Type == model.Order:
			var t touch
			if err := tx.Get(reportSpace, "lc/"+e.ProfileID, &t); errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if ev.Time.Before(t.At) || ev.Time.Sub(t.At) > AttributionWindow {
				continue
			}
			orderID, _ := ev.Order()
			if orderID == "" {
				orderID = ev.ID
			}
			if ok, err := tx.Has(reportSpace, "o/"+orderID); err != nil || ok {
				if err != nil {
					return err
				}
				continue
			}
			if err := tx.Set(reportSpace, "o/"+orderID, t.Tag); err != nil {
				return err
			}
			cur, minor := ev.OrderTotal()
			if err := bump(tx, t.Tag, ev.Time, func(s *Stats) {
				s.Orders++
				if cur != "" && minor > 0 {
					if s.Revenue == nil {
						s.Revenue = map[string]int64{}
					}
					s.Revenue[cur] = model.AddMinor(s.Revenue[cur], minor)
				}
			}); err != nil {
				return err
			}
			if err := addDay(tx, t.Tag, ev.Time, func(d *Day) { d.Orders++ }); err != nil {
				return err
			}
		}
	}
	return nil
}

func bump(tx *store.Tx, tag string, at time.Time, f func(s *Stats)) error {
	s, err := getStats(tx, tag)
	if err != nil {
		return err
	}
	f(&s)
	if at.After(s.LastEventTime) {
		s.LastEventTime = at.UTC()
	}
	return tx.Set(reportSpace, "s/"+tag, s)
}

func foldEmail(tx *store.Tx, profile, tag string, ev *model.Event) error {
	var f func(s *Stats)
	switch ev.Type {
	case mail.EventSend:
		f = func(s *Stats) { s.Sent++ }
		if err := tx.Set(reportSpace, "ls/"+profile, touch{Tag: tag, At: ev.Time}); err != nil {
			return err
		}
	case mail.EventDelivery:
		f = func(s *Stats) { s.Delivered++ }
	case mail.EventBounce:
		if first, err := once(tx, profile, tag, "bounce"); err != nil || !first {
			return err
		}
		f = func(s *Stats) { s.Bounced++ }
	case mail.EventComplaint:
		if first, err := once(tx, profile, tag, "complaint"); err != nil || !first {
			return err
		}
		f = func(s *Stats) { s.Complaints++ }
	case mail.EventOpen:
		if propString(ev, "machine") != "" {
			// a proxy's open counts apart, and only until a person opens
			if first, err := once(tx, profile, tag, "mopen"); err != nil || !first {
				return err
			}
			if opened, err := tx.Has(reportSpace, "p/"+profile+"/"+tag+"/open"); err != nil || opened {
				return err
			}
			f = func(s *Stats) { s.MachineOpens++ }
			break
		}
		first, err := once(tx, profile, tag, "open")
		if err != nil || !first {
			return err
		}
		hadMachine, err := tx.Has(reportSpace, "p/"+profile+"/"+tag+"/mopen")
		if err != nil {
			return err
		}
		f = func(s *Stats) {
			s.Opens++
			if hadMachine && s.MachineOpens > 0 {
				s.MachineOpens--
			}
		}
		if err := addDay(tx, tag, ev.Time, func(d *Day) { d.Opens++ }); err != nil {
			return err
		}
	case mail.EventClick:
		if propString(ev, "machine") != "" {
			return nil // a link scanner, not a person
		}
		first, err := once(tx, profile, tag, "click")
		if err != nil {
			return err
		}
		if link := propString(ev, "link"); link != "" {
			lk := "l/" + tag + "/" + link
			var n int64
			if err := tx.Get(reportSpace, lk, &n); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err := tx.Set(reportSpace, lk, n+1); err != nil {
				return err
			}
		}
		if err := tx.Set(reportSpace, "lc/"+profile, touch{Tag: tag, At: ev.Time}); err != nil {
			return err
		}
		f = func(s *Stats) {
			s.Clicks++
			if first {
				s.UniqueClicks++
			}
		}
		if err := addDay(tx, tag, ev.Time, func(d *Day) { d.Clicks++ }); err != nil {
			return err
		}
	default:
		return nil
	}
	return bump(tx, tag, ev.Time, f)
}

// moveReports gives a merged profile's marks and last touches to the
// profile it merged into.
func moveReports(tx *store.Tx, from, to string) error {
	var keys []string
	var vals []json.RawMessage
	if err := tx.Scan(reportSpace, "p/"+from+"/", func(k string, v json.RawMessage) (bool, error) {
		keys, vals = append(keys, k), append(vals, v)
		return true, nil
	}); err != nil {
		return err
	}
	for i, k := range keys {
		if err := tx.Set(reportSpace, "p/"+to+"/"+strings.TrimPrefix(k, "p/"+from+"/"), vals[i]); err != nil {
			return err
		}
		if err := tx.Delete(reportSpace, k); err != nil {
			return err
		}
	}
	for _, pre := range []string{"lc/", "ls/"} {
		var t touch
		if err := tx.Get(reportSpace, pre+from, &t); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		var cur touch
		if err := tx.Get(reportSpace, pre+to, &cur); err == nil && cur.At.After(t.At) {
			t = cur
		}
		if err := tx.Set(reportSpace, pre+to, t); err != nil {
			return err
		}
		if err := tx.Delete(reportSpace, pre+from); err != nil {
			return err
		}
	}
	return nil
}

// eraseReports forgets a profile (the counts stay: they name nobody).
func eraseReports(tx *store.Tx, profile string) error {
	var keys []string
	if err := tx.Scan(reportSpace, "p/"+profile+"/", func(k string, _ json.RawMessage) (bool, error) {
		keys = append(keys, k)
		return true, nil
	}); err != nil {
		return err
	}
	keys = append(keys, "lc/"+profile, "ls/"+profile)
	for _, k := range keys {
		if err := tx.Delete(reportSpace, k); err != nil {
			return err
		}
	}
	return nil
}

// TagReport returns the counts, top links and days of a tag.
func TagReport(st *store.Store, tag string) (Stats, []Link, []Day, error) {
	var s Stats
	links := []Link{}
	days := []Day{}
	err := st.Read(func(tx *store.Tx) error {
		var err error
		if s, err = getStats(tx, tag); err != nil {
			return err
		}
		if err := tx.Scan(reportSpace, "l/"+tag+"/", func(k string, v json.RawMessage) (bool, error) {
			var n int64
			json.Unmarshal(v, &n)
			links = append(links, Link{URL: strings.TrimPrefix(k, "l/"+tag+"/"), Clicks: n})
			return true, nil
		}); err != nil {
			return err
		}
		return tx.Scan(reportSpace, "d/"+tag+"/", func(_ string, v json.RawMessage) (bool, error) {
			var d Day
			if err := json.Unmarshal(v, &d); err != nil {
				return false, err
			}
			days = append(days, d)
			return true, nil
		})
	})
	slices.SortFunc(links, func(a, b Link) int {
		if a.Clicks != b.Clicks {
			if a.Clicks > b.Clicks {
				return -1
			}
			return 1
		}
		return strings.Compare(a.URL, b.URL)
	})
	if len(links) > 10 {
		links = links[:10]
	}
	if s.Revenue == nil {
		s.Revenue = map[string]int64{}
	}
	return s, links, days, err
}

// Report returns a campaign's report.
func (s *Service) Report(id string) (Report, error) {
	c, err := s.Get(id)
	if err != nil {
		return Report{}, err
	}
	c.HTML, c.Text = "", ""
	st, links, days, err := TagReport(s.st, CampaignTag(id))
	if err != nil {
		return Report{}, err
	}
	att, err := s.attributed(c)
	return Report{Campaign: c, Stats: st, TopLinks: links, Days: days, Attributed: att,
		Attribution: "orders and revenue: orders within 7 days of a click in the email (last email click); attributed: orders within 7 days after the send " +
			"whose path holds a visit from the email, credited by the last_non_direct and linear models"}, err
}
